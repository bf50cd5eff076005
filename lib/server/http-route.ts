import { Construct } from 'constructs';
import { HttpRoute, HttpRouteSpecRulesMatchesPathType } from '../../imports/gateway.networking.k8s.io';
import { metadataOf, StackContext } from '../kit/context';
import { ConfigError } from '../kit/errors';
import { checkDnsLabel } from '../kit/validate';
import { checkIngressHost } from './ingress';
import { TrackingServer } from './tracking-server';

/** A Gateway API HTTPRoute to the tracking server, attached to a Gateway you run. */
export interface HttpRouteOptions {
  /**
   * Turn the route on or off.
   * @default - on when `httpRoute` is given
   */
  readonly enabled?: boolean;
  /** Name of the parent Gateway. */
  readonly gatewayName: string;
  /**
   * Namespace of the parent Gateway.
   * @default - the stack's namespace
   */
  readonly gatewayNamespace?: string;
  /** Host names the route serves; each joins the allowed hosts and CORS origins. */
  readonly hostnames: string[];
  /**
   * Path prefix.
   * @default '/'
   */
  readonly path?: string;
}

export interface ServerHttpRouteProps extends HttpRouteOptions {
  readonly context: StackContext;
  readonly server: TrackingServer;
}

/** Checks the route's host names (fully qualified DNS names) and returns them. */
export function checkRouteHostnames(options: HttpRouteOptions): string[] {
  if (options.hostnames.length === 0) throw new ConfigError('httpRoute.hostnames needs at least one host name');
  return options.hostnames.map((h) => {
    try {
      return checkIngressHost(h);
    } catch {
      throw new ConfigError(`httpRoute.hostnames entries must be fully qualified DNS names such as mlflow.example.com (lower case, no scheme, port or wildcard); got ${JSON.stringify(h)}`);
    }
  });
}

/** The HTTPRoute, with long timeouts so large artifact transfers through the server work. */
export class ServerHttpRoute extends Construct {
  public constructor(scope: Construct, id: string, props: ServerHttpRouteProps) {
    super(scope, id);
    const { context, server } = props;
    const path = props.path ?? '/';
    if (!/^\/[A-Za-z0-9\-._~/]*$/.test(path)) {
      throw new ConfigError(`httpRoute.path must start with '/' and contain only URL path characters; got ${JSON.stringify(path)}`);
    }
    checkDnsLabel(props.gatewayName, 'httpRoute.gatewayName');
    if (props.gatewayNamespace !== undefined) checkDnsLabel(props.gatewayNamespace, 'httpRoute.gatewayNamespace');
    new HttpRoute(this, 'route', {
      metadata: metadataOf(context, context.instance, server.labels),
      spec: {
        parentRefs: [{ name: props.gatewayName, namespace: props.gatewayNamespace }],
        hostnames: checkRouteHostnames(props),
        rules: [{
          matches: [{ path: { type: HttpRouteSpecRulesMatchesPathType.PATH_PREFIX, value: path } }],
          backendRefs: [{ name: server.serviceName, port: server.port }],
          timeouts: { request: '600s' },
        }],
      },
    });
  }
}
