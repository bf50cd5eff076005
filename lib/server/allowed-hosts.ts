import * as kplus from 'cdk8s-plus-28';
import { ConfigError } from '../kit/errors';
import { ServerPart } from './server-part';

/**
 * MLflow >= 3.5 rejects requests whose Host header matches none of MLFLOW_SERVER_ALLOWED_HOSTS
 * (fnmatch patterns, the port included), and state-changing API calls whose Origin matches none of
 * MLFLOW_SERVER_CORS_ALLOWED_ORIGINS. Setting the hosts replaces MLflow's defaults, so these lists
 * keep the defaults (loopback, private addresses: node IPs of most clusters) and add the names the
 * Service is reached by inside the cluster, plus whatever the user adds (a public node IP, an Ingress host).
 */

/** MLflow's own defaults: loopback and the RFC 1918 / RFC 4193 private ranges, any port. */
const MLFLOW_DEFAULT_HOSTS = [
  'localhost', 'localhost:*', '127.0.0.1', '127.0.0.1:*', '0.0.0.0', '0.0.0.0:*', '[::1]', '[[]::1]:*',
  '10.*', '192.168.*',
  ...Array.from({ length: 16 }, (_, i) => `172.${16 + i}.*`),
  'fc00:*', 'fd00:*',
];

/** The Host header patterns the tracking server accepts. */
export function allowedHosts(serviceName: string, namespace: string, clusterDomain: string, extra: readonly string[]): string[] {
  const names = [serviceName, `${serviceName}.${namespace}`, `${serviceName}.${namespace}.svc`, `${serviceName}.${namespace}.svc.${clusterDomain}`];
  return unique([...MLFLOW_DEFAULT_HOSTS, ...names.flatMap((n) => [n, `${n}:*`]), ...extra]);
}

/** The browser origins allowed to change state: the same hosts, over http and https, plus extra origins. */
export function corsOrigins(hosts: readonly string[], extra: readonly string[]): string[] {
  const fromHosts = hosts.filter((h) => !h.includes('[')).flatMap((h) => [`http://${h}`, `https://${h}`]);
  return unique([...fromHosts, ...extra]);
}

const HOST_NAME = /^(?=.{1,253}$)([A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?\.)*[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/;
const IPV6 = /^\[[0-9A-Fa-f:.]+\]$/;

/** A host name or IP address as a Host header carries it, without scheme, port or wildcard. */
function checkPublicHost(host: string): string {
  if (!HOST_NAME.test(host) && !IPV6.test(host)) {
    throw new ConfigError(`server.publicHosts entries must be a host name or IP address without scheme, port or wildcard (e.g. 54.180.12.34, mlflow.example.com, [2001:db8::1]); got ${JSON.stringify(host)}`, 'server.publicHosts');
  }
  return host.toLowerCase();
}

/** What the server is reached by: its Service's names, the hosts the stack routes to it, and the user's. */
export interface ServerHosts {
  readonly serviceName: string;
  readonly namespace: string;
  readonly clusterDomain: string;
  /** Host names the stack itself routes to the server (Ingress, HTTPRoute). */
  readonly routedHosts: readonly string[];
  readonly publicHosts?: string[];
  readonly allowedHosts?: string[];
  readonly corsAllowedOrigins?: string[];
}

/** The entries are checked here, before the settings that use them. */
export function checkHostPatterns(hosts: Pick<ServerHosts, 'allowedHosts' | 'corsAllowedOrigins'>): void {
  for (const pattern of [...(hosts.allowedHosts ?? []), ...(hosts.corsAllowedOrigins ?? [])]) {
    if (pattern.trim() === '' || /[,\s]/.test(pattern)) {
      throw new ConfigError(`server.allowedHosts / server.corsAllowedOrigins entries must be non-empty and contain no commas or spaces; got ${JSON.stringify(pattern)}`, ['server.allowedHosts', 'server.corsAllowedOrigins']);
    }
  }
}

/** MLFLOW_SERVER_ALLOWED_HOSTS and MLFLOW_SERVER_CORS_ALLOWED_ORIGINS. */
export function hostsPart(hosts: ServerHosts): ServerPart {
  const publicHosts = (hosts.publicHosts ?? []).map(checkPublicHost);
  const allowed = allowedHosts(hosts.serviceName, hosts.namespace, hosts.clusterDomain, [
    ...[...hosts.routedHosts, ...publicHosts].flatMap((h) => [h, `${h}:*`]),
    ...(hosts.allowedHosts ?? []),
  ]);
  return {
    env: {
      MLFLOW_SERVER_ALLOWED_HOSTS: kplus.EnvValue.fromValue(allowed.join(',')),
      MLFLOW_SERVER_CORS_ALLOWED_ORIGINS: kplus.EnvValue.fromValue(corsOrigins(allowed, hosts.corsAllowedOrigins ?? []).join(',')),
    },
  };
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
