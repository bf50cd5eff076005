import { Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { SecretKeys } from '../credentials/secret-keys';
import { ConfigError } from '../kit/errors';
import { resources } from '../kit/resources';
import { restrictedContainer } from '../kit/security';
import { checkHttpUrl } from '../kit/validate';
import { ServerPart } from './server-part';

/**
 * Single sign-on with your OpenID Connect provider (Keycloak, Dex, Entra ID, Okta, Google, ...):
 * oauth2-proxy in the server pod in front of MLflow, which then listens on the pod's loopback only.
 * Browsers are sent to the provider and back; API clients send the provider's ID token as a bearer
 * token (`MLFLOW_TRACKING_TOKEN`); everything else is refused, `/health` stays open for probes.
 * The client secret and the cookie secret come from the credentials (OAUTH2_PROXY_CLIENT_SECRET,
 * OAUTH2_PROXY_COOKIE_SECRET). Needs MLflow's basic auth off.
 */
export interface SingleSignOnOptions {
  /**
   * Turn single sign-on on or off.
   * @default - on when `sso` is given
   */
  readonly enabled?: boolean;
  /** The provider's issuer URL, e.g. `https://keycloak.example.com/realms/ml` (the pod needs to reach it). */
  readonly issuerUrl: string;
  /** The client id registered at the provider. */
  readonly clientId: string;
  /** Where the provider sends browsers back: the public URL of the UI plus `/oauth2/callback`. */
  readonly redirectUrl: string;
  /**
   * Only members of these groups (the ID token's `groups` claim) get in.
   * @default - any group
   */
  readonly allowedGroups?: string[];
  /**
   * Only these e-mail domains get in.
   * @default - any domain
   */
  readonly emailDomains?: string[];
  /**
   * Further accepted token audiences, such as a public client id the data scientists' CLI tokens come from.
   * @default - only `clientId`
   */
  readonly extraAudiences?: string[];
  /**
   * How long a browser session lasts before a new sign-in.
   * @default Duration.hours(12)
   */
  readonly sessionLifetime?: Duration;
  /**
   * oauth2-proxy image.
   * @default 'quay.io/oauth2-proxy/oauth2-proxy:v7.15.3'
   */
  readonly image?: string;
}

/** The port oauth2-proxy listens on; MLflow stays on 127.0.0.1:5000 behind it. */
export const PROXY_PORT = 4180;
const PROXY_UID = 65532;

/** The issuer's port, which the server pod's NetworkPolicy must let it reach. */
export function issuerPort(options: SingleSignOnOptions): number {
  const url = new URL(options.issuerUrl);
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

/** The oauth2-proxy container of the server pod. */
function singleSignOnProxy(options: SingleSignOnOptions, secret: kplus.ISecret, upstreamPort: number, defaultImage: string): kplus.ContainerProps {
  checkHttpUrl(options.issuerUrl, 'sso.issuerUrl');
  const redirect = checkHttpUrl(options.redirectUrl, 'sso.redirectUrl');
  if (!redirect.endsWith('/oauth2/callback')) {
    throw new ConfigError(`sso.redirectUrl must be the UI's public URL followed by /oauth2/callback (register the same URL at the provider); got ${JSON.stringify(options.redirectUrl)}`, 'sso.redirectUrl');
  }
  const names = [options.clientId, ...(options.allowedGroups ?? []), ...(options.emailDomains ?? []), ...(options.extraAudiences ?? [])];
  for (const name of names) {
    if (!/^[^\s,]+$/.test(name ?? '')) throw new ConfigError(`sso.clientId, allowedGroups, emailDomains and extraAudiences must be non-empty, without spaces or commas; got ${JSON.stringify(name)}`, ['sso.clientId', 'sso.allowedGroups', 'sso.emailDomains', 'sso.extraAudiences']);
  }
  const session = (options.sessionLifetime ?? Duration.hours(12)).toSeconds();
  const args = [
    '--provider=oidc',
    `--oidc-issuer-url=${options.issuerUrl}`,
    `--client-id=${options.clientId}`,
    `--redirect-url=${redirect}`,
    '--scope=openid email profile groups',
    ...(options.emailDomains?.length ? options.emailDomains : ['*']).map((d) => `--email-domain=${d}`),
    ...(options.allowedGroups ?? []).map((g) => `--allowed-group=${g}`),
    ...(options.extraAudiences ?? []).map((a) => `--oidc-extra-audience=${a}`),
    `--upstream=http://127.0.0.1:${upstreamPort}`,
    // Artifact uploads and downloads through the server can take minutes.
    '--upstream-timeout=600s',
    `--http-address=0.0.0.0:${PROXY_PORT}`,
    '--cookie-name=_mlflow_oauth2',
    `--cookie-secure=${redirect.startsWith('https:')}`,
    `--cookie-expire=${session}s`,
    '--skip-provider-button',
    '--approval-prompt=auto',
    '--skip-auth-route=GET=^/health$',
    // Unauthenticated API calls get 401, not the provider's login page.
    '--api-route=^/api/',
    '--api-route=^/ajax-api/',
    '--api-route=^/v1/traces',
    '--skip-jwt-bearer-tokens',
    '--bearer-token-login-fallback=false',
    '--silence-ping-logging',
    // Not --reverse-proxy: it would trust X-Forwarded-Uri from any client, and /health's exemption would open everything.
  ];
  return {
    name: 'oauth2-proxy',
    image: options.image ?? defaultImage,
    imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
    command: ['/bin/oauth2-proxy'],
    args,
    ports: [{ name: 'http', number: PROXY_PORT }],
    envVariables: {
      OAUTH2_PROXY_CLIENT_SECRET: secret.envValue(SecretKeys.OAUTH2_PROXY_CLIENT_SECRET),
      OAUTH2_PROXY_COOKIE_SECRET: secret.envValue(SecretKeys.OAUTH2_PROXY_COOKIE_SECRET),
    },
    securityContext: restrictedContainer(PROXY_UID),
    resources: resources(50, 64, 500, 256),
    liveness: kplus.Probe.fromHttpGet('/ping', { port: PROXY_PORT, periodSeconds: Duration.seconds(20), failureThreshold: 6, timeoutSeconds: Duration.seconds(5) }),
    readiness: kplus.Probe.fromHttpGet('/ready', { port: PROXY_PORT, periodSeconds: Duration.seconds(10), failureThreshold: 3, timeoutSeconds: Duration.seconds(5) }),
  };
}

/**
 * Single sign-on in the server pod: oauth2-proxy in front of MLflow, which then listens on loopback only.
 * @param defaultImage the proxy's image unless `options.image` names one (DefaultImages.OAUTH2_PROXY, perhaps from a mirror)
 */
export function ssoPart(options: SingleSignOnOptions, secret: kplus.ISecret, upstreamPort: number, defaultImage: string): ServerPart {
  return { sidecars: [singleSignOnProxy(options, secret, upstreamPort, defaultImage)] };
}
