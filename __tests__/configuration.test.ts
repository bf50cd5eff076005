import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Chart, Testing } from 'cdk8s';
import { AppConfig, ConfigError, Credentials, MlflowStack } from '../lib';
import { envOf, Manifest, one, secretContent, thrown } from './support/synth';

/** The app's configuration without code: mlflow.yaml and .env, read as the app reads them. */
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-config-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const ENV = path.resolve(__dirname, '..', '.env.example');

function file(name: string, text: string): string {
  const p = path.join(dir, `${Math.random().toString(36).slice(2)}-${name}`);
  fs.writeFileSync(p, text);
  return p;
}

function synthFrom(yaml: string, env = ENV): Manifest[] {
  const config = AppConfig.load(file('mlflow.yaml', yaml));
  const chart = new Chart(Testing.app(), 'mlflow');
  new MlflowStack(chart, 'mlflow', config.stackProps(env));
  return Testing.synth(chart) as Manifest[];
}


function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).not.toContain('\n');
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('mlflow.yaml', () => {
  test('the seed-style deployment from configuration only: existing PostgreSQL Service, AWS S3, a public IP', () => {
    const objects = synthFrom([
      'server:',
      '  publicHosts: [54.180.12.34, ec2-54-180-12-34.ap-northeast-2.compute.amazonaws.com]',
      'backendStore:',
      '  external: { host: postgres, port: 5432 }',
      'artifactStore:',
      '  s3: {}',
    ].join('\n'));
    expect(objects.filter((o) => o.kind === 'StatefulSet')).toEqual([]);
    const server = one(objects, 'Deployment').spec.template.spec.containers[0];
    const hosts = envOf(server, 'MLFLOW_SERVER_ALLOWED_HOSTS').value.split(',');
    expect(hosts).toEqual(expect.arrayContaining(['54.180.12.34', '54.180.12.34:*', 'ec2-54-180-12-34.ap-northeast-2.compute.amazonaws.com:*']));
    expect(envOf(server, 'MLFLOW_SERVER_CORS_ALLOWED_ORIGINS').value.split(',')).toContain('http://54.180.12.34:*');
    expect(secretContent(one(objects, 'Secret')).MLFLOW_BACKEND_STORE_URI).toBe('postgresql+psycopg2://mlflow:change-me-postgres@postgres:5432/mlflow');
    expect(secretContent(one(objects, 'Secret')).MLFLOW_S3_ENDPOINT_URL).toBeUndefined();
  });

  test('every key of mlflow.example.yaml, uncommented, is accepted and takes effect', () => {
    const example = fs.readFileSync(path.resolve(__dirname, '..', 'mlflow.example.yaml'), 'utf8');
    // Uncomment the settings (keep comments), choosing one store of each pair and leaving out the existing Secret.
    const yaml = example.split('\n').filter((l) => /^#( | {3})[a-zA-Z0-9]+:/.test(l))
      .map((l) => l.replace(/^# ?/, ''))
      .filter((l) => !/^credentials:|^ {2}existingSecret|^ {2}postgres:|^ {2}minio:|^ {2}replicas:|^ {2}seaweedfs:|^auth:|^sso:|^ {2}(issuerUrl|clientId|redirectUrl|allowedGroups|emailDomains|extraAudiences|sessionLifetime):/.test(l))
      .join('\n');
    const objects = synthFrom(yaml);
    const server = one(objects, 'Deployment');
    expect(server.spec.template.spec.containers[0].resources).toEqual({ requests: { cpu: '250m', memory: '1Gi' }, limits: { cpu: '2', memory: '2Gi' } });
    expect(one(objects, 'HorizontalPodAutoscaler').spec.maxReplicas).toBe(6);
    expect(one(objects, 'Ingress').spec.rules[0].host).toBe('mlflow.example.com');
    expect(objects.filter((o) => o.kind === 'CronJob').map((o) => o.metadata.name).sort()).toEqual(['mlflow-backup', 'mlflow-gc']);
    expect(envOf(one(objects, 'CronJob', 'mlflow-backup').spec.jobTemplate.spec.template.spec.containers[1], 'BACKUP_BUCKET').value).toBe('mlflow-backups');
    expect(secretContent(one(objects, 'Secret')).MLFLOW_BACKEND_STORE_URI).toMatch(/@postgres:5432\/mlflow\?sslmode=require$/);
  });

  test('an unknown or misspelled key is an error with the line and the closest known key', () => {
    const message = configError(() => AppConfig.load(file('mlflow.yaml', 'name: x\nserver:\n  replicas: 2\n  nodeport: 30004\n')));
    expect(message).toMatch(/mlflow\.yaml line 4: unknown key server\.nodeport \(did you mean nodePort\?\); allowed in server: image, replicas, workers, nodePort, exposure, resources, artifactServing, publicHosts/);
    expect(configError(() => AppConfig.load(file('mlflow.yaml', 'namespce: ml\n')))).toMatch(/line 1: unknown key namespce \(did you mean namespace\?\)/);
  });

  test('a key given twice is an error on the second line', () => {
    expect(configError(() => AppConfig.load(file('mlflow.yaml', 'server:\n  nodePort: 30004\n  nodePort: 30005\n')))).toMatch(/mlflow\.yaml line 3: nodePort is given twice in the same mapping; keep one$/);
  });

  test.each([
    ['server:\n  nodePort: 80\n', /line 2: server\.nodePort must be an integer from 30000 to 32767; got 80/],
    ['server:\n  replicas: two\n', /line 2: server\.replicas must be integer; got "two"/],
    ['backup:\n  retention: 2 weeks\n', /line 2: backup\.retention must be a duration such as 30s, 5m, 2h or 14d; got "2 weeks"/],
    ['server:\n  artifactServing: s3\n', /line 2: server\.artifactServing must be one of proxied, direct/],
    ['backendStore:\n  postgres: {}\n  external: { host: db }\n', /line 1: backendStore takes exactly one of postgres, external/],
    ['ingress:\n  path: /\n', /line 1: ingress needs host/],
    ['server: [1, 2]\n', /line 1: server must be object/],
    ['name: a\n  b: c\n', /line 1: Nested mappings are not allowed in compact mappings/],
  ])('a bad value names the line and what is allowed: %j', (yaml, pattern) => {
    expect(configError(() => AppConfig.load(file('mlflow.yaml', yaml)))).toMatch(pattern);
  });

  test('an error the library finds later is placed on the line of the key it names', () => {
    const config = AppConfig.load(file('mlflow.yaml', 'name: mlflow\ngarbageCollection:\n  schedule: "99 * * * *"\n'));
    const error = thrown(() => new MlflowStack(new Chart(Testing.app(), 'c'), 'm', config.stackProps(ENV)));
    expect(config.locate(error.message, [...error.keys])).toMatch(/mlflow\.yaml line 3: garbageCollection\.schedule must be a cron schedule/);
  });

  test.each([
    ['a top-level key', 'namespace: Team_A\n', 1, /namespace must be a DNS label/],
    ['a key deep in a factory', 'backendStore:\n  external:\n    port: 6432\n    host: db/x\n', 4, /backendStore\.external\.host must be a host name or IP address/],
    ['a cross-field check', 'credentials:\n  existingSecret: s\nbackendStore:\n  external: { host: db, sslMode: require }\n', 4, /backendStore\.external\.sslMode cannot take effect with Secret s/],
    ['a check on a setting the file leaves at its default', 'name: a\nbackup:\n  enabled: true\nbackendStore:\n  external: { engine: mysql, host: db }\n', 3, /backup\.enabled: the stack cannot dump MySQL at db:3306/],
    ['two settings that conflict', 'server:\n  replicas: 2\n  jobs: { enabled: true }\n', 3, /server\.jobs needs server\.replicas: 1/],
  ])('every error the library finds later names the file and the line: %s', (_what, yaml, line, pattern) => {
    const configFile = file('mlflow.yaml', yaml);
    const config = AppConfig.load(configFile);
    const error = thrown(() => new MlflowStack(new Chart(Testing.app(), 'c'), 'm', config.stackProps(ENV)));
    expect(error.message).toMatch(pattern);
    expect(config.locate(error.message, [...error.keys])).toBe(`${configFile} line ${line}: ${error.message}`);
  });

  test('a key at the wrong level says where it belongs', () => {
    expect(configError(() => AppConfig.load(file('mlflow.yaml', 'name: a\nnodePort: 30004\n'))))
      .toMatch(/line 2: unknown key nodePort; it belongs in server\.nodePort; allowed in \(top level\): /);
    expect(configError(() => AppConfig.load(file('mlflow.yaml', 'server:\n  storageClassName: fast\n'))))
      .toMatch(/line 2: unknown key server\.storageClassName; it belongs in backendStore\.postgres\.storageClassName or artifactStore\.minio\.storageClassName or artifactStore\.seaweedfs\.storageClassName/);
  });

  test('an existing Secret named in the settings replaces .env, which is then not read', () => {
    const config = AppConfig.load(file('mlflow.yaml', 'credentials:\n  existingSecret: team-mlflow\n'));
    expect(config.needsCredentialsFile).toBe(false);
    const chart = new Chart(Testing.app(), 'mlflow');
    new MlflowStack(chart, 'mlflow', config.stackProps('/does/not/exist.env'));
    const objects = Testing.synth(chart) as Manifest[];
    expect(objects.some((o) => o.kind === 'Secret')).toBe(false);
    expect(envOf(one(objects, 'Deployment').spec.template.spec.containers[0], 'MLFLOW_BACKEND_STORE_URI').valueFrom.secretKeyRef.name).toBe('team-mlflow');
  });

  test('says whether a public host is configured (the app prints how to add one when not)', () => {
    expect(AppConfig.load(file('mlflow.yaml', 'name: a\n')).hasPublicHost).toBe(false);
    expect(AppConfig.load(undefined).hasPublicHost).toBe(false);
    expect(AppConfig.load(file('mlflow.yaml', 'server:\n  publicHosts: [1.2.3.4]\n')).hasPublicHost).toBe(true);
  });
});

describe('.env strictness', () => {
  const base = fs.readFileSync(ENV, 'utf8');
  test('a misspelled key is an error with its line and the key it was meant to be', () => {
    const env = file('x.env', `${base}\nMLFLOW_S3_ENDPOINT_UR=https://s3.example.com\n`);
    const line = base.split('\n').length + 1;
    expect(configError(() => Credentials.fromEnvFile(env))).toMatch(new RegExp(`x\\.env line ${line}: unknown key MLFLOW_S3_ENDPOINT_UR \\(did you mean MLFLOW_S3_ENDPOINT_URL\\?\\); allowed: POSTGRES_USER,`));
    expect(configError(() => Credentials.fromEnvFile(file('y.env', `${base}\nMLFLOW_TRACKING_PASWORD='a-long-password-1'\n`)))).toMatch(/did you mean MLFLOW_TRACKING_PASSWORD\?/);
  });

  test('a key given twice is an error naming both lines', () => {
    expect(configError(() => Credentials.fromEnvFile(file('z.env', 'POSTGRES_USER=a\nPOSTGRES_USER=b\n')))).toMatch(/z\.env line 2: POSTGRES_USER is given twice \(first on line 1\); keep one/);
  });
});

describe('MySQL or MariaDB as the backend store', () => {
  test('a percent-encoded mysql+pymysql URI, port 3306, TLS modes, no in-cluster database and no backup', () => {
    const objects = synthFrom('backendStore:\n  external: { engine: mysql, host: mariadb.data.svc, sslMode: required }\n', file('m.env', fs.readFileSync(ENV, 'utf8').replace("'change-me-postgres'", "'p@ss:w/rd#%'")));
    expect(secretContent(one(objects, 'Secret')).MLFLOW_BACKEND_STORE_URI).toBe('mysql+pymysql://mlflow:p%40ss%3Aw%2Frd%23%25@mariadb.data.svc:3306/mlflow?ssl_check_hostname=false');
    expect(objects.filter((o) => o.kind === 'StatefulSet').map((o) => o.metadata.name)).toEqual(['mlflow-minio']);
    expect(objects.some((o) => o.kind === 'CronJob')).toBe(false);
    const egress = one(objects, 'NetworkPolicy', 'mlflow-tracking-server').spec.egress;
    expect(egress.flatMap((r: any) => r.ports.map((p: any) => p.port))).toContain(3306);
  });

  test('sslMode values are per engine', () => {
    expect(configError(() => synthFrom('backendStore:\n  external: { engine: mysql, host: db, sslMode: require }\n'))).toMatch(/backendStore\.external\.sslMode for mysql must be one of disabled, required, verify-identity; got "require"/);
    expect(configError(() => AppConfig.load(file('mlflow.yaml', 'backendStore:\n  external: { engine: oracle, host: db }\n')))).toMatch(/line 2: backendStore\.external\.engine must be one of postgresql, mysql/);
  });

  test('the migration program takes MySQL\'s named lock and PostgreSQL\'s advisory lock', () => {
    const program = one(synthFrom('name: a\n'), 'Deployment').spec.template.spec.initContainers[0].command[2];
    expect(program).toContain('GET_LOCK(:name, 60)');
    expect(program).toContain('pg_advisory_lock(:key)');
  });
});

describe('an existing Secret with store settings', () => {
  test('a TLS mode the Secret\'s URI would silently override is refused', () => {
    expect(configError(() => synthFrom('credentials:\n  existingSecret: s\nbackendStore:\n  external: { host: db, sslMode: require }\n')))
      .toMatch(/backendStore\.external\.sslMode cannot take effect with Secret s: the Secret's MLFLOW_BACKEND_STORE_URI holds the whole URI; put the setting into that URI/);
  });

  test('host and port still shape the NetworkPolicies', () => {
    const objects = synthFrom('credentials:\n  existingSecret: s\nbackendStore:\n  external: { host: db, port: 6432 }\n');
    const egress = one(objects, 'NetworkPolicy', 'mlflow-tracking-server').spec.egress;
    expect(egress.flatMap((r: any) => r.ports.map((p: any) => p.port))).toContain(6432);
  });
});

describe('several stacks in one app', () => {
  test('the same node port twice is a synth error naming both stacks', () => {
    const chart = new Chart(new App(), 'c');
    new MlflowStack(chart, 'a', { credentials: Credentials.fromSecretName('a'), name: 'a' });
    expect(configError(() => new MlflowStack(chart, 'b', { credentials: Credentials.fromSecretName('b'), name: 'b', namespace: 'other' })))
      .toMatch(/server\.nodePort 30003 of the stack at c\/b is already taken by the stack at c\/a; node ports are cluster-wide/);
    new MlflowStack(chart, 'd', { credentials: Credentials.fromSecretName('d'), name: 'd', server: { nodePort: 30004 } });
  });
});

test('public hosts must be bare host names or addresses', () => {
  for (const bad of ['http://1.2.3.4', '1.2.3.4:30003', '*.example.com', 'a b']) {
    expect(configError(() => synthFrom(`server:\n  publicHosts: ['${bad}']\n`))).toMatch(/server\.publicHosts entries must be a host name or IP address without scheme, port or wildcard/);
  }
});
