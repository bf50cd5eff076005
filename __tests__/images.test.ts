import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Chart, Testing } from 'cdk8s';
import { AppConfig, ArtifactServing, ArtifactStore, BackendStore, Credentials, DefaultImages, MlflowStack, MlflowStackProps } from '../lib';
import { containersOf, Manifest, one, podSpecs, SSO, SSO_VALUES, synthStack, thrown } from './support/synth';

/** `images`: every default image from a mirror in one line; explicitly given images as written. */

const MIRROR = 'harbor.example.com/mirror';

/** Between them, every default image: MLflow, PostgreSQL, MinIO, mc, SeaweedFS, oauth2-proxy. */
const CONFIGURATIONS: Record<string, Partial<MlflowStackProps>> = {
  'in-cluster stores, backup and gc': { garbageCollection: {} },
  'SeaweedFS and single sign-on': {
    credentials: Credentials.fromValues(SSO_VALUES),
    artifactStore: ArtifactStore.seaweedfs(),
    sso: SSO,
    server: { artifactServing: ArtifactServing.DIRECT },
  },
  'external PostgreSQL with a backup': { backendStore: BackendStore.external({ host: 'db.example.com' }), backup: { enabled: true, bucket: 'mlflow-backups' } },
};

const images = (objects: Manifest[]) => podSpecs(objects).flatMap(({ spec }) => containersOf(spec).map((c) => c.image as string));


test('the configurations below use every default image', () => {
  const used = new Set(Object.values(CONFIGURATIONS).flatMap((props) => images(synthStack(props))));
  const defaults = Object.values(DefaultImages as unknown as Record<string, unknown>).filter((v) => typeof v === 'string');
  expect([...used].sort()).toEqual([...defaults].sort());
});

describe.each(Object.entries(CONFIGURATIONS))('images.registry: %s', (_name, props) => {
  const plain = synthStack(props);
  const mirrored = synthStack({ ...props, images: { registry: MIRROR } });

  test('every container and init container image comes from the mirror', () => {
    const all = images(mirrored);
    expect(all.length).toBeGreaterThan(0);
    for (const image of all) expect(image.startsWith(`${MIRROR}/`)).toBe(true);
  });

  test('each is the source image with its registry host replaced by the mirror, path and tag kept', () => {
    expect(images(mirrored)).toEqual(images(plain).map((i) => `${MIRROR}/${i.slice(i.indexOf('/') + 1)}`));
  });

  test('nothing but the images changes (the version labels read the tag)', () => {
    const withoutImages = (objects: Manifest[]) => JSON.parse(JSON.stringify(objects).replace(/"image":"[^"]*"/g, '"image":""').replace(/mlflow-bucket-[0-9a-f]{8}/g, 'mlflow-bucket-x'));
    expect(withoutImages(mirrored)).toEqual(withoutImages(plain));
  });
});

test('the mapping, image by image', () => {
  const mirrored = Object.values(CONFIGURATIONS).flatMap((props) => images(synthStack({ ...props, images: { registry: MIRROR } })));
  expect([...new Set(mirrored)].sort()).toEqual([
    'harbor.example.com/mirror/chrislusf/seaweedfs:4.48_large_disk',
    'harbor.example.com/mirror/library/postgres:17.7-bookworm',
    'harbor.example.com/mirror/minio/mc:RELEASE.2025-08-13T08-35-41Z',
    'harbor.example.com/mirror/minio/minio:RELEASE.2025-09-07T16-13-09Z',
    'harbor.example.com/mirror/mlflow/mlflow:v3.18.0-full',
    'harbor.example.com/mirror/oauth2-proxy/oauth2-proxy:v7.15.3',
  ]);
});

test('images.mirrors: one mirror per source registry (Harbor proxy-cache projects), over registry', () => {
  const objects = synthStack({
    ...CONFIGURATIONS['SeaweedFS and single sign-on'],
    images: { registry: MIRROR, mirrors: { 'docker.io': 'harbor.example.com/dockerhub', 'quay.io': 'harbor.example.com/quay' } },
  });
  expect([...new Set(images(objects))].sort()).toEqual([
    'harbor.example.com/dockerhub/chrislusf/seaweedfs:4.48_large_disk',
    'harbor.example.com/dockerhub/library/postgres:17.7-bookworm',
    'harbor.example.com/mirror/mlflow/mlflow:v3.18.0-full',
    'harbor.example.com/quay/minio/mc:RELEASE.2025-08-13T08-35-41Z',
    'harbor.example.com/quay/oauth2-proxy/oauth2-proxy:v7.15.3',
  ]);
  // mirrors alone leaves the other registries' images where they are.
  const some = images(synthStack({ images: { mirrors: { 'ghcr.io': 'registry.example.com:5000/ghcr' } } }));
  expect(some).toContain('registry.example.com:5000/ghcr/mlflow/mlflow:v3.18.0-full');
  expect(some).toContain(DefaultImages.POSTGRES);
});

test('an image given explicitly is never rewritten, nor one the stack takes from it', () => {
  const objects = synthStack({
    credentials: Credentials.fromValues(SSO_VALUES),
    images: { registry: MIRROR },
    server: { image: 'registry.corp/mlflow:3.18.0-corp', artifactServing: ArtifactServing.DIRECT },
    backendStore: BackendStore.postgres({ image: 'registry.corp/postgres:17' }),
    artifactStore: ArtifactStore.minio({ image: 'registry.corp/minio:2025' }),
    bucketJob: { image: 'registry.corp/mc:2025' },
    sso: { ...SSO, image: 'registry.corp/oauth2-proxy:7' },
    garbageCollection: {},
  });
  expect(one(objects, 'Deployment').spec.template.spec.containers.map((c: any) => c.image)).toEqual(['registry.corp/mlflow:3.18.0-corp', 'registry.corp/oauth2-proxy:7']);
  expect(one(objects, 'Deployment').spec.template.spec.initContainers[0].image).toBe('registry.corp/mlflow:3.18.0-corp');
  expect(one(objects, 'StatefulSet', 'mlflow-postgres').spec.template.spec.containers[0].image).toBe('registry.corp/postgres:17');
  expect(one(objects, 'StatefulSet', 'mlflow-minio').spec.template.spec.containers[0].image).toBe('registry.corp/minio:2025');
  expect(one(objects, 'Job').spec.template.spec.containers[0].image).toBe('registry.corp/mc:2025');
  // gc runs the server's image; the backup dumps with PostgreSQL's and uploads with the bucket Job's.
  expect(one(objects, 'CronJob', 'mlflow-gc').spec.jobTemplate.spec.template.spec.containers[0].image).toBe('registry.corp/mlflow:3.18.0-corp');
  expect(one(objects, 'CronJob', 'mlflow-backup').spec.jobTemplate.spec.template.spec.containers.map((c: any) => c.image)).toEqual(['registry.corp/postgres:17', 'registry.corp/mc:2025']);
  // The backup's own image settings are explicit too.
  const backup = one(synthStack({ images: { registry: MIRROR }, backup: { image: 'registry.corp/pg-tools:17', clientImage: 'registry.corp/mc:2' } }), 'CronJob', 'mlflow-backup');
  expect(backup.spec.jobTemplate.spec.template.spec.containers.map((c: any) => c.image)).toEqual(['registry.corp/pg-tools:17', 'registry.corp/mc:2']);
});

test('without images, the defaults are the pinned upstream images', () => {
  expect([...new Set(images(synthStack()))].sort()).toEqual([DefaultImages.POSTGRES, DefaultImages.MLFLOW, DefaultImages.MINIO_CLIENT, DefaultImages.MINIO]);
});

describe('bad values are refused, naming the setting', () => {
  test.each<[string, Partial<MlflowStackProps>, string, RegExp]>([
    ['a scheme', { images: { registry: 'https://harbor.example.com/mirror' } }, 'images.registry', /images\.registry must be a registry host .* got "https:\/\/harbor\.example\.com\/mirror"/],
    ['a trailing slash', { images: { registry: 'harbor.example.com/mirror/' } }, 'images.registry', /without scheme, tag or trailing '\/'/],
    ['no host (Docker would read it as a Docker Hub user)', { images: { registry: 'mirror' } }, 'images.registry', /a registry host \(with a dot or a port, or localhost\)/],
    ['upper case in the path', { images: { registry: 'harbor.example.com/Mirror' } }, 'images.registry', /must be a registry host/],
    ['a host no default image comes from', { images: { mirrors: { 'quay.com': 'harbor.example.com/quay' } } }, 'images.mirrors', /no default image comes from "quay\.com"; they come from docker\.io, ghcr\.io, quay\.io/],
    ['a bad mirror', { images: { mirrors: { 'quay.io': 'harbor.example.com/quay:latest' } } }, 'images.mirrors', /images\.mirrors must be a registry host/],
  ])('%s', (_what, props, key, message) => {
    const err = thrown(() => synthStack(props));
    expect(err.message).toMatch(message);
    expect(err.keys[0]).toBe(key);
  });

  test('registries with a port and localhost are fine', () => {
    expect(images(synthStack({ images: { registry: 'localhost:5000' } }))).toContain('localhost:5000/mlflow/mlflow:v3.18.0-full');
    expect(images(synthStack({ images: { registry: 'registry.example.com:8443/a/b_c/d-e' } }))).toContain('registry.example.com:8443/a/b_c/d-e/mlflow/mlflow:v3.18.0-full');
  });
});

test('mlflow.yaml: images gives the same output as the props', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-images-'));
  try {
    const file = path.join(dir, 'mlflow.yaml');
    fs.writeFileSync(file, `images:\n  registry: ${MIRROR}\n  mirrors: { docker.io: harbor.example.com/dockerhub }\nbackendStore:\n  postgres: { image: registry.corp/postgres:17 }\n`);
    const env = path.resolve(__dirname, '..', '.env.example');
    const synth = (props: MlflowStackProps) => {
      const chart = new Chart(Testing.app(), 'mlflow');
      new MlflowStack(chart, 'mlflow', props);
      return Testing.synth(chart) as Manifest[];
    };
    const fromYaml = synth(AppConfig.load(file).stackProps(env));
    expect(fromYaml).toEqual(synth({
      credentials: Credentials.fromEnvFile(env),
      images: { registry: MIRROR, mirrors: { 'docker.io': 'harbor.example.com/dockerhub' } },
      backendStore: BackendStore.postgres({ image: 'registry.corp/postgres:17' }),
    }));
    expect(images(fromYaml)).toContain('registry.corp/postgres:17');
    expect(images(fromYaml)).toContain('harbor.example.com/mirror/minio/minio:RELEASE.2025-09-07T16-13-09Z');
    fs.writeFileSync(file, 'images:\n  registy: harbor.example.com\n');
    expect(() => AppConfig.load(file)).toThrow(/line 2: unknown key images\.registy \(did you mean registry\?\)/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
