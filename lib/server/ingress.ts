import { Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { metadataOf, StackContext } from '../kit/context';
import { ConfigError } from '../kit/errors';
import { checkDnsSubdomain } from '../kit/validate';
import { TrackingServer } from './tracking-server';

/** An Ingress in front of the tracking server. */
export interface IngressOptions {
  /**
   * Turn the Ingress on or off.
   * @default - on when `ingress` is given
   */
  readonly enabled?: boolean;
  /** Host name the UI and API are served at, e.g. `mlflow.example.com`; it is added to the allowed hosts. */
  readonly host: string;
  /**
   * Path prefix.
   * @default '/'
   */
  readonly path?: string;
  /**
   * Name of a `kubernetes.io/tls` Secret for the host; without one the Ingress serves plain HTTP.
   * @default - no TLS
   */
  readonly tlsSecretName?: string;
  /**
   * IngressClass.
   * @default - the cluster's default IngressClass
   */
  readonly className?: string;
  /**
   * Largest request body, for artifact uploads through the proxy. Written as the ingress-nginx
   * annotation `nginx.ingress.kubernetes.io/proxy-body-size`; other controllers need their own setting.
   * @default - no limit (`0`)
   */
  readonly maxBodySize?: Size;
}

export interface ServerIngressProps extends IngressOptions {
  readonly context: StackContext;
  /** The tracking server: its labels, Service and port. */
  readonly server: TrackingServer;
}

const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** Checks an Ingress host: a fully qualified DNS name, lower case, no port, no wildcard. */
export function checkIngressHost(host: string): string {
  if (!DNS_NAME.test(host)) {
    throw new ConfigError(`ingress.host must be a fully qualified DNS name such as mlflow.example.com (lower case, no scheme, port or wildcard); got ${JSON.stringify(host)}`);
  }
  return host;
}

/** The Ingress. Long timeouts and no body limit, so large artifact uploads through the server work. */
export class ServerIngress extends Construct {
  public constructor(scope: Construct, id: string, props: ServerIngressProps) {
    super(scope, id);
    const { context, server } = props;
    const host = checkIngressHost(props.host);
    const path = props.path ?? '/';
    if (!/^\/[A-Za-z0-9\-._~/]*$/.test(path)) {
      throw new ConfigError(`ingress.path must start with '/' and contain only URL path characters; got ${JSON.stringify(path)}`);
    }
    if (props.tlsSecretName !== undefined) checkDnsSubdomain(props.tlsSecretName, 'ingress.tlsSecretName');
    if (props.className !== undefined) checkDnsSubdomain(props.className, 'ingress.className');
    const bodySize = props.maxBodySize === undefined ? '0' : `${props.maxBodySize.toMebibytes()}m`;
    new kplus.Ingress(this, 'ingress', {
      metadata: {
        ...metadataOf(context, context.instance, server.labels),
        annotations: {
          'nginx.ingress.kubernetes.io/proxy-body-size': bodySize,
          'nginx.ingress.kubernetes.io/proxy-read-timeout': '600',
          'nginx.ingress.kubernetes.io/proxy-send-timeout': '600',
        },
      },
      className: props.className,
      tls: props.tlsSecretName ? [{ hosts: [host], secret: kplus.Secret.fromSecretName(this, 'tls', props.tlsSecretName) }] : undefined,
      rules: [{ host, path, pathType: kplus.HttpIngressPathType.PREFIX, backend: kplus.IngressBackend.fromService(server.service, { port: server.port }) }],
    });
  }
}
