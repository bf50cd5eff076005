import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Chart, Testing } from 'cdk8s';
import { AppConfig, Credentials, MlflowStack, MlflowStackProps, TrackingServerOptions } from '../lib';
import { schemaErrors } from './support/schema';
import { envOf, Manifest, one, SSO, SSO_VALUES, synthStack, TEST_VALUES, thrown } from './support/synth';
import { modelOf, unknownFields } from './support/unknown-fields';

/** server.extraEnv, server.extraEnvFromSecrets, server.extraVolumes: what the server's MLflow processes get beyond the stack's own. */

const EXTRAS: TrackingServerOptions = {
  extraEnv: { HTTPS_PROXY: 'http://proxy.corp:3128', NO_PROXY: '.svc,.cluster.local', REQUESTS_CA_BUNDLE: '/etc/ssl/corp/ca.crt', EMPTY_IS_FINE: '' },
  extraEnvFromSecrets: {
    OPENAI_API_KEY: { name: 'ai-providers', key: 'openai' },
    ANTHROPIC_API_KEY: { name: 'ai-providers', key: 'anthropic', optional: true },
  },
  extraVolumes: [
    { name: 'corp-ca', configMap: 'corp-ca', mountPath: '/etc/ssl/corp', items: { 'ca.crt': 'ca.crt' } },
    { name: 'gcs-key', secret: 'gcs-service-account', mountPath: '/var/run/gcs/key.json', subPath: 'key.json' },
  ],
};

describe('with every kind of extra', () => {
  const objects = synthStack({ credentials: Credentials.fromValues(SSO_VALUES), sso: SSO, server: EXTRAS });
  const pod = one(objects, 'Deployment').spec.template.spec;
  const mlflow = pod.containers.find((c: any) => c.name === 'mlflow');
  const migrate = pod.initContainers.find((c: any) => c.name === 'migrate');
  const proxy = pod.containers.find((c: any) => c.name === 'oauth2-proxy');

  test.each([['mlflow', mlflow], ['migrate', migrate]])('the %s container gets the values, the Secret keys and the mounts', (_name, container) => {
    expect(envOf(container, 'HTTPS_PROXY')).toEqual({ name: 'HTTPS_PROXY', value: 'http://proxy.corp:3128' });
    expect(envOf(container, 'NO_PROXY').value).toBe('.svc,.cluster.local');
    expect(envOf(container, 'EMPTY_IS_FINE')).toEqual({ name: 'EMPTY_IS_FINE', value: '' });
    expect(envOf(container, 'OPENAI_API_KEY')).toEqual({ name: 'OPENAI_API_KEY', valueFrom: { secretKeyRef: { name: 'ai-providers', key: 'openai' } } });
    expect(envOf(container, 'ANTHROPIC_API_KEY')).toEqual({ name: 'ANTHROPIC_API_KEY', valueFrom: { secretKeyRef: { name: 'ai-providers', key: 'anthropic', optional: true } } });
    expect(container.volumeMounts).toEqual(expect.arrayContaining([
      { name: 'corp-ca', mountPath: '/etc/ssl/corp', readOnly: true },
      { name: 'gcs-key', mountPath: '/var/run/gcs/key.json', subPath: 'key.json', readOnly: true },
    ]));
    // The stack's own environment is still there.
    expect(envOf(container, 'MLFLOW_BACKEND_STORE_URI').valueFrom.secretKeyRef.name).toBe('mlflow-credentials');
  });

  test('the single sign-on proxy gets none of it', () => {
    expect(proxy.env.map((e: any) => e.name).sort()).toEqual(['OAUTH2_PROXY_CLIENT_SECRET', 'OAUTH2_PROXY_COOKIE_SECRET']);
    expect(proxy.volumeMounts ?? []).toEqual([]);
  });

  test('the volumes come from the ConfigMap and the Secret by name, once each', () => {
    expect(pod.volumes.filter((v: any) => ['corp-ca', 'gcs-key'].includes(v.name))).toEqual([
      { name: 'corp-ca', configMap: { name: 'corp-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
      { name: 'gcs-key', secret: { secretName: 'gcs-service-account' } },
    ]);
  });

  test('no other object changes, and the output is valid Kubernetes', () => {
    const plain = synthStack({ credentials: Credentials.fromValues(SSO_VALUES), sso: SSO });
    expect(objects.filter((o) => o.kind !== 'Deployment')).toEqual(plain.filter((o) => o.kind !== 'Deployment'));
    expect(objects.flatMap((o) => schemaErrors(o).map((e) => `${o.kind}/${o.metadata.name}: ${e}`))).toEqual([]);
    expect(objects.flatMap((o) => unknownFields(o, modelOf(o.apiVersion, o.kind)).map((p) => `${o.kind}${p}`))).toEqual([]);
  });

  test('no Secret value is in the manifest: only the Secret\'s name and key', () => {
    const text = JSON.stringify(one(objects, 'Deployment'));
    expect(text).toContain('"ai-providers"');
    expect(objects.filter((o) => o.kind === 'Secret').map((o) => o.metadata.name)).toEqual(['mlflow-credentials']);
  });
});

test('without extras the server is what it was', () => {
  expect(synthStack({ server: { extraEnv: {}, extraEnvFromSecrets: {}, extraVolumes: [] } })).toEqual(synthStack());
});

describe('what is refused, naming the setting', () => {
  test.each<[string, TrackingServerOptions, string, RegExp]>([
    ['a name the stack sets from the Secret', { extraEnv: { MLFLOW_BACKEND_STORE_URI: 'sqlite:///x.db' } }, 'server.extraEnv', /MLFLOW_BACKEND_STORE_URI is set by the stack itself/],
    ['a name the stack sets from a setting', { extraEnv: { MLFLOW_SERVER_ALLOWED_HOSTS: '*' } }, 'server.extraEnv', /MLFLOW_SERVER_ALLOWED_HOSTS is set by the stack itself/],
    ['a name the migrate step gets from the stack', { extraEnvFromSecrets: { MLFLOW_DB_WAIT_SECONDS: { name: 's', key: 'k' } } }, 'server.extraEnvFromSecrets', /MLFLOW_DB_WAIT_SECONDS is set by the stack itself/],
    ['an API key as a plain value', { extraEnv: { OPENAI_API_KEY: 'sk-123' } }, 'server.extraEnv', /OPENAI_API_KEY looks like a secret, and extraEnv values are written into the manifest; put it in a Secret and name its key in server\.extraEnvFromSecrets/],
    ['a token as a plain value', { extraEnv: { HF_TOKEN: 'hf_x' } }, 'server.extraEnv', /HF_TOKEN looks like a secret/],
    ['a client secret as a plain value', { extraEnv: { AZURE_CLIENT_SECRET: 'x' } }, 'server.extraEnv', /AZURE_CLIENT_SECRET looks like a secret/],
    ['a proxy URL with a password', { extraEnv: { HTTPS_PROXY: 'http://user:pa55@proxy.corp:3128' } }, 'server.extraEnv', /the value of HTTPS_PROXY is a URL with a password/],
    ['a name that is no variable name', { extraEnv: { '1BAD': 'x' } }, 'server.extraEnv', /"1BAD" is not an environment variable name/],
    ['a variable given twice', { extraEnv: { FOO: 'x' }, extraEnvFromSecrets: { FOO: { name: 's', key: 'k' } } }, 'server.extraEnvFromSecrets', /FOO is also in server\.extraEnv/],
    ['a Secret that is no name', { extraEnvFromSecrets: { FOO: { name: 'My_Secret', key: 'k' } } }, 'server.extraEnvFromSecrets.FOO.name', /must be a DNS subdomain/],
    ['a key that is no Secret key', { extraEnvFromSecrets: { FOO: { name: 's', key: 'a/b' } } }, 'server.extraEnvFromSecrets.FOO.key', /must be a Secret key/],
    ['a volume name the pod has', { extraVolumes: [{ name: 'tmp', configMap: 'x', mountPath: '/etc/x' }] }, 'server.extraVolumes.0.name', /the pod already has a volume tmp/],
    ['a volume name twice', { extraVolumes: [{ name: 'a', configMap: 'x', mountPath: '/etc/x' }, { name: 'a', secret: 'y', mountPath: '/etc/y' }] }, 'server.extraVolumes.1.name', /already has a volume a/],
    ['a path the stack mounts', { extraVolumes: [{ name: 'a', configMap: 'x', mountPath: '/tmp' }] }, 'server.extraVolumes.0.mountPath', /something is already mounted at \/tmp/],
    ['a relative mount path', { extraVolumes: [{ name: 'a', configMap: 'x', mountPath: 'etc/x' }] }, 'server.extraVolumes.0.mountPath', /must be an absolute path/],
    ['a mount path with ..', { extraVolumes: [{ name: 'a', configMap: 'x', mountPath: '/etc/../x' }] }, 'server.extraVolumes.0.mountPath', /without '\.\.'/],
    ['both a ConfigMap and a Secret', { extraVolumes: [{ name: 'a', configMap: 'x', secret: 'y', mountPath: '/etc/x' }] }, 'server.extraVolumes.0', /give exactly one of configMap and secret/],
    ['neither', { extraVolumes: [{ name: 'a', mountPath: '/etc/x' }] }, 'server.extraVolumes.0', /give exactly one of configMap and secret/],
    ['an item path out of the volume', { extraVolumes: [{ name: 'a', configMap: 'x', mountPath: '/etc/x', items: { 'ca.crt': '../ca.crt' } }] }, 'server.extraVolumes.0.items', /must be a relative path without '\.\.'/],
    ['a subPath out of the volume', { extraVolumes: [{ name: 'a', secret: 'x', mountPath: '/etc/x', subPath: '/key' }] }, 'server.extraVolumes.0.subPath', /must be a relative path/],
  ])('%s', (_what, server, key, message) => {
    const err = thrown(() => synthStack({ server }));
    expect(err.message).toMatch(message);
    expect(err.keys[0]).toBe(key);
  });

  test('names that hold file paths, not secrets, pass', () => {
    const objects = synthStack({ server: { extraEnv: { GOOGLE_APPLICATION_CREDENTIALS: '/var/run/gcs/key.json', SSL_KEY_FILE: '/etc/tls/tls.key', SSL_CERT_FILE: '/etc/ssl/corp/ca.crt' } } });
    expect(envOf(one(objects, 'Deployment').spec.template.spec.containers[0], 'GOOGLE_APPLICATION_CREDENTIALS').value).toBe('/var/run/gcs/key.json');
  });

  test('a name set only with a feature on is refused with that feature on', () => {
    expect(synthStack({ server: { extraEnv: { MLFLOW_AUTH_CONFIG_PATH: '/x' } } })).toBeDefined();
    const err = thrown(() => synthStack({
      credentials: Credentials.fromValues({ ...TEST_VALUES, adminPassword: 'admin-password-12' }),
      server: { extraEnv: { MLFLOW_AUTH_CONFIG_PATH: '/x' } },
    }));
    expect(err.message).toMatch(/MLFLOW_AUTH_CONFIG_PATH is set by the stack itself/);
  });
});

test('mlflow.yaml: the extras give the same output as the props, and a misspelled key names its line', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-extras-'));
  try {
    const file = path.join(dir, 'mlflow.yaml');
    fs.writeFileSync(file, [
      'server:',
      '  extraEnv: { HTTPS_PROXY: "http://proxy.corp:3128", NO_PROXY: ".svc,.cluster.local", REQUESTS_CA_BUNDLE: /etc/ssl/corp/ca.crt, EMPTY_IS_FINE: "" }',
      '  extraEnvFromSecrets:',
      '    OPENAI_API_KEY: { name: ai-providers, key: openai }',
      '    ANTHROPIC_API_KEY: { name: ai-providers, key: anthropic, optional: true }',
      '  extraVolumes:',
      '    - { name: corp-ca, configMap: corp-ca, mountPath: /etc/ssl/corp, items: { ca.crt: ca.crt } }',
      '    - { name: gcs-key, secret: gcs-service-account, mountPath: /var/run/gcs/key.json, subPath: key.json }',
      '',
    ].join('\n'));
    const env = path.resolve(__dirname, '..', '.env.example');
    const synth = (props: MlflowStackProps) => {
      const chart = new Chart(Testing.app(), 'mlflow');
      new MlflowStack(chart, 'mlflow', props);
      return Testing.synth(chart) as Manifest[];
    };
    expect(synth(AppConfig.load(file).stackProps(env))).toEqual(synth({ credentials: Credentials.fromEnvFile(env), server: EXTRAS }));
    fs.writeFileSync(file, 'server:\n  extraEnvFromSecrets:\n    OPENAI_API_KEY: { name: ai-providers, keys: openai }\n');
    expect(() => AppConfig.load(file)).toThrow(/line 3: server\.extraEnvFromSecrets\.OPENAI_API_KEY needs key/);
    fs.writeFileSync(file, 'server:\n  extraEnv:\n    HF_TOKEN: x\n');
    const config = AppConfig.load(file);
    const err = thrown(() => synth(config.stackProps(env)));
    expect(config.locate(err.message, [...err.keys])).toMatch(/mlflow\.yaml line 2: server\.extraEnv: HF_TOKEN looks like a secret/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
