import { Duration } from 'cdk8s';
import { ArtifactServing, ConfigError, Credentials, DefaultImages, ServiceExposure } from '../lib';
import { schemaErrors } from './support/schema';
import { envOf, Manifest, one, secretContent, synthStack, TEST_VALUES } from './support/synth';

/** Single sign-on (oauth2-proxy in the server pod), Gateway API routes, and a ClusterIP Service. */

const SECRETS = { ssoClientSecret: 'provider-client-secret', ssoCookieSecret: 'MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=' };
const SSO = {
  issuerUrl: 'https://login.example.com/realms/ml',
  clientId: 'mlflow',
  redirectUrl: 'https://mlflow.example.com/oauth2/callback',
  allowedGroups: ['ml-team'],
  emailDomains: ['example.com'],
  extraAudiences: ['mlflow-cli'],
};
const withSso = (extra = {}) => synthStack({ credentials: Credentials.fromValues({ ...TEST_VALUES, ...SECRETS }), sso: SSO, ...extra });

function expectConfigError(fn: () => unknown, pattern: RegExp): void {
  expect(fn).toThrow(ConfigError);
  expect(fn).toThrow(pattern);
}

describe('single sign-on', () => {
  const objects = withSso();
  const pod = one(objects, 'Deployment').spec.template.spec;
  const [mlflow, proxy] = pod.containers;

  test('MLflow listens on the pod\'s loopback only, behind oauth2-proxy on 4180, which the Service targets', () => {
    expect(mlflow.args.slice(0, 5)).toEqual(['mlflow', 'server', '--host', '127.0.0.1', '--port']);
    expect(proxy.name).toBe('oauth2-proxy');
    expect(proxy.image).toBe(DefaultImages.OAUTH2_PROXY);
    expect(proxy.ports).toEqual([{ containerPort: 4180, name: 'http' }]);
    expect(one(objects, 'Service', 'mlflow').spec.ports).toEqual([{ name: 'http', nodePort: 30003, port: 5000, targetPort: 4180 }]);
  });

  test('the provider settings, the allowed groups and domains, bearer tokens with their audience checked', () => {
    expect(proxy.args).toEqual(expect.arrayContaining([
      '--provider=oidc', '--oidc-issuer-url=https://login.example.com/realms/ml', '--client-id=mlflow',
      '--redirect-url=https://mlflow.example.com/oauth2/callback', '--allowed-group=ml-team', '--email-domain=example.com',
      '--oidc-extra-audience=mlflow-cli', '--upstream=http://127.0.0.1:5000', '--skip-jwt-bearer-tokens',
      '--bearer-token-login-fallback=false', '--cookie-secure=true', '--skip-auth-route=GET=^/health$', '--api-route=^/api/',
    ]));
    expect(proxy.args).not.toContain('--reverse-proxy');
  });

  test('client and cookie secrets come only from the Secret', () => {
    expect(envOf(proxy, 'OAUTH2_PROXY_CLIENT_SECRET').valueFrom.secretKeyRef.key).toBe('OAUTH2_PROXY_CLIENT_SECRET');
    expect(envOf(proxy, 'OAUTH2_PROXY_COOKIE_SECRET').valueFrom.secretKeyRef.key).toBe('OAUTH2_PROXY_COOKIE_SECRET');
    expect(secretContent(one(objects, 'Secret'))).toMatchObject({ OAUTH2_PROXY_CLIENT_SECRET: SECRETS.ssoClientSecret });
    expect(JSON.stringify(proxy.args)).not.toContain(SECRETS.ssoClientSecret);
  });

  test('/health stays open for probes: MLflow is probed through the proxy, the proxy on /ping', () => {
    expect(mlflow.readinessProbe.httpGet).toEqual({ path: '/health', port: 4180, scheme: 'HTTP' });
    expect(proxy.livenessProbe.httpGet).toMatchObject({ path: '/ping', port: 4180 });
  });

  test('NetworkPolicies: traffic arrives on 4180, and the server pod may reach the provider', () => {
    const policy = one(objects, 'NetworkPolicy', 'mlflow-tracking-server');
    expect(policy.spec.ingress).toEqual([{ ports: [{ port: 4180, protocol: 'TCP' }] }]);
    expect(policy.spec.egress.flatMap((r: any) => r.ports.map((p: any) => p.port))).toContain(443);
  });

  test('refused: with basic auth, without its secrets, with gc through the server, with a bad URL', () => {
    expectConfigError(() => synthStack({ credentials: Credentials.fromValues({ ...TEST_VALUES, ...SECRETS, adminPassword: 'an-admin-password-1' }), sso: SSO }), /sso and basic auth are both on/);
    expectConfigError(() => synthStack({ sso: SSO }), /sso is on but Credentials\.fromValues has no OAUTH2_PROXY_CLIENT_SECRET/);
    expectConfigError(() => withSso({ garbageCollection: {} }), /sso and garbageCollection conflict with proxied artifacts/);
    expect(() => withSso({ garbageCollection: {}, server: { artifactServing: ArtifactServing.DIRECT } })).not.toThrow();
    expectConfigError(() => withSso({ sso: { ...SSO, issuerUrl: 'login.example.com' } }), /sso\.issuerUrl must be an http:\/\/ or https:\/\/ URL/);
    expectConfigError(() => withSso({ sso: { ...SSO, redirectUrl: 'https://mlflow.example.com/' } }), /sso\.redirectUrl must be the UI's public URL followed by \/oauth2\/callback/);
    expectConfigError(() => Credentials.fromValues({ ...TEST_VALUES, ssoCookieSecret: 'short' }), /OAUTH2_PROXY_COOKIE_SECRET must be 16, 24 or 32 bytes/);
  });

  test('metrics: Prometheus scrapes the listener beside MLflow, past the proxy but not past the NetworkPolicy', () => {
    const withMetrics = withSso({ metrics: { scrapeFrom: ['monitoring'] } });
    const pod = one(withMetrics, 'Deployment').spec.template.spec;
    expect(pod.containers.map((c: any) => c.name)).toEqual(['mlflow', 'metrics', 'oauth2-proxy']);
    expect(pod.containers[0].args).toEqual(expect.arrayContaining(['--host', '127.0.0.1', '--expose-prometheus']));
    expect(one(withMetrics, 'ServiceMonitor').spec.endpoints).toEqual([{ port: 'metrics', path: '/metrics', interval: '30s' }]);
    expect(one(withMetrics, 'NetworkPolicy', 'mlflow-tracking-server').spec.ingress).toEqual([
      { ports: [{ port: 4180, protocol: 'TCP' }] },
      { from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }], ports: [{ port: 9464, protocol: 'TCP' }] },
    ]);
  });

  test('a session lifetime of its own', () => {
    const args = one(withSso({ sso: { ...SSO, sessionLifetime: Duration.hours(2) } }), 'Deployment').spec.template.spec.containers[1].args;
    expect(args).toContain('--cookie-expire=7200s');
  });
});

describe('Gateway API HTTPRoute', () => {
  const route = { gatewayName: 'public', gatewayNamespace: 'gateways', hostnames: ['mlflow.example.com', 'ml.example.org'], path: '/' };
  const objects = synthStack({ httpRoute: route });

  test('a route from the Gateway to the server\'s Service, long timeouts for artifact transfers', () => {
    const r = one(objects, 'HTTPRoute', 'mlflow');
    expect(r.apiVersion).toBe('gateway.networking.k8s.io/v1');
    expect(r.spec).toEqual({
      parentRefs: [{ name: 'public', namespace: 'gateways' }],
      hostnames: ['mlflow.example.com', 'ml.example.org'],
      rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [{ name: 'mlflow', port: 5000 }], timeouts: { request: '600s' } }],
    });
  });

  test('its host names join the allowed hosts and CORS origins', () => {
    const env = one(objects, 'Deployment').spec.template.spec.containers[0].env;
    const hosts = env.find((e: any) => e.name === 'MLFLOW_SERVER_ALLOWED_HOSTS').value.split(',');
    expect(hosts).toEqual(expect.arrayContaining(['mlflow.example.com', 'mlflow.example.com:*', 'ml.example.org']));
    expect(env.find((e: any) => e.name === 'MLFLOW_SERVER_CORS_ALLOWED_ORIGINS').value.split(',')).toContain('https://ml.example.org');
  });

  test('the same host through both Ingress and route, or a bad host, is refused', () => {
    expectConfigError(() => synthStack({ httpRoute: route, ingress: { host: 'ml.example.org' } }), /ml\.example\.org is configured both as ingress\.host and in httpRoute\.hostnames/);
    expectConfigError(() => synthStack({ httpRoute: { ...route, hostnames: ['http://x.example.com'] } }), /httpRoute\.hostnames entries must be fully qualified DNS names/);
    expectConfigError(() => synthStack({ httpRoute: { ...route, hostnames: [] } }), /httpRoute\.hostnames needs at least one host name/);
  });
});

describe('exposure', () => {
  test('ClusterIP for an installation behind a route: no node port, none claimed', () => {
    const objects: Manifest[] = synthStack({ server: { exposure: ServiceExposure.CLUSTER_IP }, httpRoute: { gatewayName: 'g', hostnames: ['mlflow.example.com'] } });
    const service = one(objects, 'Service', 'mlflow');
    expect(service.spec.type).toBe('ClusterIP');
    expect(service.spec.ports[0].nodePort).toBeUndefined();
    expect(() => synthStack({ server: { exposure: ServiceExposure.CLUSTER_IP, nodePort: 30010 } })).toThrow(/server\.nodePort and server\.exposure ClusterIP conflict/);
  });

  test('NodePort stays the default', () => {
    expect(one(synthStack(), 'Service', 'mlflow').spec.type).toBe('NodePort');
  });
});

test('the route is checked against the vendored Gateway API CRD, which can refuse one', () => {
  const route = one(synthStack({ httpRoute: { gatewayName: 'g', hostnames: ['mlflow.example.com'] } }), 'HTTPRoute');
  expect(schemaErrors(route)).toEqual([]);
  expect(schemaErrors({ ...route, spec: { ...route.spec, parentRefs: [{ namespace: 'x' }] } })).toEqual([expect.stringMatching(/must have required property 'name'/)]);
});

test('a cookie key from `openssl rand -base64 32` is stored URL-safe, the only base64 oauth2-proxy decodes (same bytes)', () => {
  const bytes = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 0xfb) % 256));
  const key = bytes.toString('base64');
  expect(key).toMatch(/[+/]/);
  const objects = synthStack({ credentials: Credentials.fromValues({ ...TEST_VALUES, ssoClientSecret: 's', ssoCookieSecret: key }), sso: SSO });
  const stored = secretContent(one(objects, 'Secret')).OAUTH2_PROXY_COOKIE_SECRET;
  expect(stored).toBe(bytes.toString('base64url') + '=');
  expect(Buffer.from(stored, 'base64url')).toEqual(bytes);
});
