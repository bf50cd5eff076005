import { App, Chart, Testing } from 'cdk8s';
import { ConfigError, CredentialValues, Credentials, MlflowStack, MlflowStackProps } from '../../lib';

/** A Kubernetes object as synthesized. */
export type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [key: string]: any };

/** Credentials with a password that exercises every character a URI or a shell could trip on. */
export const TEST_VALUES: CredentialValues = {
  postgresUser: 'mlflow',
  postgresPassword: `p@ss:w/rd#%?&'"q`,
  postgresDb: 'mlflow',
  awsAccessKeyId: 'minio-admin',
  awsSecretAccessKey: 'S3cr3t+key/with=chars',
  artifactRoot: 's3://mlflow-artifacts/runs',
};

/** Synthesizes one stack in a fresh chart and returns its objects in output order. */
export function synthStack(props: Partial<MlflowStackProps> = {}): Manifest[] {
  const app: App = Testing.app();
  const chart = new Chart(app, 'test');
  new MlflowStack(chart, 'mlflow', { credentials: Credentials.fromValues(TEST_VALUES), ...props });
  return Testing.synth(chart) as Manifest[];
}

/** The one object of a kind (and name, if given); fails the test when there is not exactly one. */
export function one(objects: Manifest[], kind: string, name?: string): Manifest {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0];
}

/** Every pod spec in the output, with the object that holds it. */
export function podSpecs(objects: Manifest[]): Array<{ owner: Manifest; spec: any; labels: Record<string, string> }> {
  const out: Array<{ owner: Manifest; spec: any; labels: Record<string, string> }> = [];
  for (const o of objects) {
    const template = o.kind === 'CronJob' ? o.spec.jobTemplate.spec.template : o.spec?.template;
    if (template?.spec) out.push({ owner: o, spec: template.spec, labels: template.metadata?.labels ?? {} });
    if (o.kind === 'Pod') out.push({ owner: o, spec: o.spec, labels: o.metadata.labels ?? {} });
  }
  return out;
}

/** Every container (init and regular) of a pod spec. */
export function containersOf(spec: any): any[] {
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
}

/** The env entry `name` of a container. */
export function envOf(container: any, name: string): any {
  return (container.env ?? []).find((e: any) => e.name === name);
}

/** The decoded content of a Secret (stringData or base64 data). */
export function secretContent(secret: Manifest): Record<string, string> {
  const out: Record<string, string> = { ...(secret.stringData ?? {}) };
  for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v as string, 'base64').toString('utf8');
  return out;
}

/** Credentials that single sign-on needs besides the test values. */
export const SSO_VALUES: CredentialValues = { ...TEST_VALUES, ssoClientSecret: 'provider-client-secret', ssoCookieSecret: '0123456789abcdef0123456789abcdef' };
/** A provider for single sign-on. */
export const SSO = { issuerUrl: 'https://login.example.com/realms/ml', clientId: 'mlflow', redirectUrl: 'https://mlflow.example.com/oauth2/callback' };

/** The ConfigError `fn` throws (a one-line message); fails the test when it throws nothing or something else. */
export function thrown(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).not.toContain('\n');
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}
