import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Chart, Testing } from 'cdk8s';
import { ArtifactStore, BackendStore, ConfigError, Credentials, MlflowStack, MlflowStackProps } from '../lib';
import { TEST_VALUES } from './support/synth';

const GOOD_ENV = [
  'POSTGRES_USER=mlflow',
  "POSTGRES_PASSWORD='p@ss:w/rd#%?&\"q'",
  'POSTGRES_DB=mlflow',
  'AWS_ACCESS_KEY_ID=minio-admin',
  'AWS_SECRET_ACCESS_KEY=minio-secret-key',
  'MLFLOW_S3_ARTIFACT_ROOT=s3://mlflow/artifacts',
].join('\n');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-env-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function envFile(text: string): string {
  const file = path.join(dir, `${Math.random().toString(36).slice(2)}.env`);
  fs.writeFileSync(file, text);
  return file;
}

function build(props: Partial<MlflowStackProps>): void {
  new MlflowStack(new Chart(Testing.app(), 'c'), 'mlflow', { credentials: Credentials.fromValues(TEST_VALUES), ...props });
}

/** Asserts a ConfigError whose one-line message matches every pattern. */
function expectConfigError(fn: () => unknown, ...patterns: RegExp[]): void {
  let error: unknown;
  try {
    fn();
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(ConfigError);
  const message = (error as Error).message;
  expect(message).not.toContain('\n');
  for (const p of patterns) expect(message).toMatch(p);
}

describe('.env file', () => {
  test('a good file with a quoted special-character password parses to the exact password', () => {
    expect(Credentials.fromEnvFile(envFile(GOOD_ENV)).values?.postgresPassword).toBe(`p@ss:w/rd#%?&"q`);
  });

  test.each(['POSTGRES_USER', 'POSTGRES_PASSWORD', 'POSTGRES_DB', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'MLFLOW_S3_ARTIFACT_ROOT'])(
    'missing %s is named, with the file',
    (key) => {
      const file = envFile(GOOD_ENV.split('\n').filter((l) => !l.startsWith(`${key}=`)).join('\n'));
      expectConfigError(() => Credentials.fromEnvFile(file), new RegExp(`required key ${key} is missing`), new RegExp(file.replace(/[.]/g, '\\.')));
    },
  );

  test('an empty required value is named', () => {
    expectConfigError(() => Credentials.fromEnvFile(envFile(GOOD_ENV.replace('POSTGRES_DB=mlflow', 'POSTGRES_DB='))), /POSTGRES_DB is required and must not be empty/);
  });

  test('a line that is not KEY=value is named by its number', () => {
    expectConfigError(() => Credentials.fromEnvFile(envFile(`${GOOD_ENV}\nthis is not a setting`)), /line 7: not a KEY=value line/);
  });

  test('an unclosed quote is named by its line', () => {
    expectConfigError(() => Credentials.fromEnvFile(envFile(`${GOOD_ENV}\nAWS_DEFAULT_REGION="us-east-1`)), /line 7: the value's opening " is never closed/);
  });

  test("an unquoted '#' that dotenv would cut at is refused, with the fix", () => {
    expectConfigError(() => Credentials.fromEnvFile(envFile(GOOD_ENV.replace("POSTGRES_PASSWORD='p@ss:w/rd#%?&\"q'", 'POSTGRES_PASSWORD=abc#def'))), /POSTGRES_PASSWORD's value contains '#'/, /single quotes/);
  });

  test('a missing file is named', () => {
    expectConfigError(() => Credentials.fromEnvFile(path.join(dir, 'nope.env')), /cannot read the credentials file .*nope\.env: ENOENT/);
  });

  test.each([
    ['mlflow/artifacts', /must be an S3 URI/],
    ['s3://', /must be an S3 URI/],
    ['s3://My_Bucket/x', /invalid bucket "My_Bucket"/],
    ['s3://ab/x', /invalid bucket "ab"/],
    ['s3://192.168.1.1/x', /invalid bucket/],
  ])('artifact root %s is refused', (root, pattern) => {
    expectConfigError(() => Credentials.fromEnvFile(envFile(GOOD_ENV.replace('s3://mlflow/artifacts', root))), /MLFLOW_S3_ARTIFACT_ROOT/, pattern);
  });

  test('an endpoint without a scheme is refused', () => {
    expectConfigError(() => Credentials.fromEnvFile(envFile(`${GOOD_ENV}\nMLFLOW_S3_ENDPOINT_URL=s3.example.com`)), /MLFLOW_S3_ENDPOINT_URL must be an http:\/\/ or https:\/\/ URL including the scheme/);
  });
});

describe('MinIO credentials', () => {
  test('a root user under 3 characters is refused', () => {
    expectConfigError(() => build({ credentials: Credentials.fromValues({ ...TEST_VALUES, awsAccessKeyId: 'ab' }) }), /AWS_ACCESS_KEY_ID is MinIO's root user and must be at least 3 characters/);
  });

  test('a root password under 8 characters is refused', () => {
    expectConfigError(() => build({ credentials: Credentials.fromValues({ ...TEST_VALUES, awsSecretAccessKey: 'short' }) }), /AWS_SECRET_ACCESS_KEY is MinIO's root password and must be at least 8 characters/);
  });

  test('short keys are fine for an external S3 service, which has its own rules', () => {
    expect(() => build({ credentials: Credentials.fromValues({ ...TEST_VALUES, awsAccessKeyId: 'ab', awsSecretAccessKey: 'short' }), artifactStore: ArtifactStore.s3() })).not.toThrow();
  });
});

describe('props', () => {
  test.each([29999, 32768, 3.5])('node port %p is refused', (nodePort) => {
    expectConfigError(() => build({ server: { nodePort } }), /server\.nodePort must be an integer from 30000 to 32767/);
  });

  test.each([0, -1])('replicas %p are refused', (replicas) => {
    expectConfigError(() => build({ server: { replicas } }), /server\.replicas must be an integer from 1 to 100/);
  });

  test('workers < 1 are refused', () => {
    expectConfigError(() => build({ server: { workers: 0 } }), /server\.workers/);
  });

  test.each([
    ['name', () => ({ name: 'MLflow' }), /^name must be a DNS label/],
    ['long name', () => ({ name: 'a-name-that-is-far-too-long-for-a-prefix-x' }), /^name must be a DNS label .*at most 40 characters/],
    ['namespace', () => ({ namespace: 'ml_platform' }), /^namespace must be a DNS label/],
    ['clusterDomain', () => ({ clusterDomain: 'Cluster..local' }), /^clusterDomain must be a DNS subdomain/],
    ['secret name', () => ({ credentials: Credentials.fromSecretName('Bad Name') }), /credentials\.existingSecret must be a DNS subdomain/],
    ['storage class', () => ({ backendStore: BackendStore.postgres({ storageClassName: 'Fast SSD' }) }), /backendStore\.postgres\.storageClassName must be a DNS subdomain/],
  ])('an invalid %s is refused', (_what, props, pattern) => {
    expectConfigError(() => build((props as () => Partial<MlflowStackProps>)()), pattern as RegExp);
  });

  test('an S3 endpoint in the credentials conflicts with an in-cluster MinIO', () => {
    expectConfigError(
      () => build({ credentials: Credentials.fromValues({ ...TEST_VALUES, s3EndpointUrl: 'https://s3.example.com' }), artifactStore: ArtifactStore.minio() }),
      /MLFLOW_S3_ENDPOINT_URL \(https:\/\/s3\.example\.com\) conflicts with artifactStore/,
    );
  });

  test('createNamespace on a system namespace is refused', () => {
    expectConfigError(() => build({ createNamespace: true }), /createNamespace cannot manage the system namespace default/);
  });

  test('an external database with a bad sslMode or port is refused', () => {
    expectConfigError(() => BackendStore.external({ host: 'db', sslMode: 'yes' }), /backendStore\.external\.sslMode for postgresql must be one of disable, allow, prefer, require, verify-ca, verify-full/);
    expectConfigError(() => BackendStore.external({ host: 'db', port: 70000 }), /backendStore\.external\.port must be an integer from 1 to 65535/);
    expectConfigError(() => BackendStore.external({ host: 'db/x' }), /backendStore\.external\.host must be a host name or IP address/);
  });

  test('an S3 endpoint without a scheme is refused', () => {
    expectConfigError(() => ArtifactStore.s3({ endpoint: 'minio:9000' }), /artifactStore\.s3\.endpoint must be an http/);
  });

  test('allowed hosts may not smuggle commas into the list', () => {
    expectConfigError(() => build({ server: { allowedHosts: ['a.example.com,*'] } }), /no commas or spaces/);
  });
});
