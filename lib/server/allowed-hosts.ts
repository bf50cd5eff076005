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

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
