import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Chart, Testing } from 'cdk8s';
import { AppConfig, ArtifactServing, ArtifactStore, BackendStore, Credentials, MlflowStack, MlflowStackProps, PodOptions } from '../lib';
import { SETTINGS_SCHEMA, SettingSchema } from '../lib/kit/settings';
import { YAML_TYPES } from '../lib/config/yaml-types';
import { schemaErrors } from './support/schema';
import { Manifest, one, podSpecs, SSO, SSO_VALUES, synthStack, thrown } from './support/synth';
import { modelOf, unknownFields } from './support/unknown-fields';

/** Pod settings for every pod (`pods`), each part's own over them (`server.pods`, ...), in code and in mlflow.yaml. */

const POD_SETTINGS: PodOptions = {
  nodeSelector: { 'node.example.com/pool': 'ml' },
  tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'ml', effect: 'NoSchedule' }],
  affinity: {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/arch', operator: 'In', values: ['amd64'] }] }],
      },
    },
  },
  priorityClassName: 'ml-platform',
  imagePullSecrets: [{ name: 'registry-pull' }],
  annotations: { 'example.com/owner': 'ml-team' },
  labels: { 'example.com/team': 'ml' },
};


/** Between them, every workload the stack makes: the server (with and without the SSO proxy), PostgreSQL, MinIO, SeaweedFS, the bucket Job, backup and gc. */
const EVERY_WORKLOAD: Record<string, Partial<MlflowStackProps>> = {
  'in-cluster stores, backup and gc': { garbageCollection: {} },
  'SeaweedFS and single sign-on': {
    credentials: Credentials.fromValues(SSO_VALUES),
    artifactStore: ArtifactStore.seaweedfs(),
    sso: SSO,
    server: { artifactServing: ArtifactServing.DIRECT },
    garbageCollection: {},
  },
};

describe.each(Object.entries(EVERY_WORKLOAD))('pods on every workload: %s', (_name, props) => {
  const objects = synthStack({ ...props, pods: POD_SETTINGS });
  const pods = podSpecs(objects);

  test('the workloads are all there: Deployment, StatefulSets, the bucket Job, every CronJob', () => {
    expect(pods.map((p) => p.owner.kind).sort()).toEqual(['CronJob', 'CronJob', 'Deployment', 'Job', 'StatefulSet', 'StatefulSet']);
  });

  test.each(pods.map((p) => [`${p.owner.kind} ${p.owner.metadata.name}`, p] as const))('%s carries every setting', (_owner, { owner, spec, labels }) => {
    expect(spec.nodeSelector).toEqual({ 'node.example.com/pool': 'ml' });
    expect(spec.tolerations).toEqual([{ key: 'dedicated', operator: 'Equal', value: 'ml', effect: 'NoSchedule' }]);
    expect(spec.affinity).toEqual({
      nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/arch', operator: 'In', values: ['amd64'] }] }] } },
    });
    expect(spec.priorityClassName).toBe('ml-platform');
    expect(spec.imagePullSecrets).toEqual([{ name: 'registry-pull' }]);
    const template = owner.kind === 'CronJob' ? owner.spec.jobTemplate.spec.template : owner.spec.template;
    expect(template.metadata.annotations).toEqual({ 'example.com/owner': 'ml-team' });
    expect(labels['example.com/team']).toBe('ml');
    // The stack's own labels stay, and the object's selector still matches the template.
    expect(labels['app.kubernetes.io/instance']).toBe('mlflow');
    for (const [k, v] of Object.entries<string>(owner.spec.selector?.matchLabels ?? {})) expect(labels[k]).toBe(v);
    // The object itself gets none of the pod's metadata.
    expect(owner.metadata.annotations?.['example.com/owner']).toBeUndefined();
    expect(owner.metadata.labels?.['example.com/team']).toBeUndefined();
  });

  test('the output is valid Kubernetes, without unknown fields', () => {
    expect(objects.flatMap((o) => schemaErrors(o).map((e) => `${o.kind}/${o.metadata.name}: ${e}`))).toEqual([]);
    expect(objects.filter((o) => o.kind !== 'ServiceMonitor').flatMap((o) => unknownFields(o, modelOf(o.apiVersion, o.kind)).map((p) => `${o.kind}${p}`))).toEqual([]);
  });
});

test('the server keeps spreading its pods over nodes beside an affinity (the spread counts only the nodes the affinity allows)', () => {
  const spec = one(synthStack({ pods: POD_SETTINGS }), 'Deployment').spec.template.spec;
  expect(spec.topologySpreadConstraints).toHaveLength(1);
  expect(spec.topologySpreadConstraints[0].whenUnsatisfiable).toBe('ScheduleAnyway');
  expect(spec.affinity.nodeAffinity).toBeDefined();
});

describe('a part\'s own pods override the stack\'s', () => {
  const objects = synthStack({
    pods: POD_SETTINGS,
    server: { pods: { priorityClassName: 'server-critical', nodeSelector: { 'node.example.com/pool': 'web', 'topology.kubernetes.io/zone': 'a' }, labels: { tier: 'web' } } },
    backendStore: BackendStore.postgres({ pods: { tolerations: [{ key: 'storage', operator: 'Exists', effect: 'NoSchedule' }], annotations: { 'example.com/owner': 'dba', 'backup.example.com/skip': 'true' } } }),
    artifactStore: ArtifactStore.minio({ pods: { affinity: {}, tolerations: [], imagePullSecrets: [] } }),
    bucketJob: { pods: { priorityClassName: 'batch' } },
    backup: { pods: { nodeSelector: { 'node.example.com/pool': 'batch' } } },
    garbageCollection: { pods: { labels: { 'example.com/team': 'platform' } } },
  });
  const spec = (kind: string, name?: string) => {
    const o = one(objects, kind, name);
    return o.kind === 'CronJob' ? o.spec.jobTemplate.spec.template : o.spec.template;
  };

  test('a field the part gives replaces the stack\'s; the others stay the stack\'s', () => {
    expect(spec('Deployment').spec.priorityClassName).toBe('server-critical');
    expect(spec('Job').spec.priorityClassName).toBe('batch');
    expect(spec('StatefulSet', 'mlflow-postgres').spec.priorityClassName).toBe('ml-platform');
    expect(spec('StatefulSet', 'mlflow-postgres').spec.tolerations).toEqual([{ key: 'storage', operator: 'Exists', effect: 'NoSchedule' }]);
    expect(spec('Deployment').spec.tolerations).toEqual(POD_SETTINGS.tolerations);
  });

  test('maps are merged key by key, the part\'s value winning', () => {
    expect(spec('Deployment').spec.nodeSelector).toEqual({ 'node.example.com/pool': 'web', 'topology.kubernetes.io/zone': 'a' });
    expect(spec('CronJob', 'mlflow-backup').spec.nodeSelector).toEqual({ 'node.example.com/pool': 'batch' });
    expect(spec('StatefulSet', 'mlflow-postgres').metadata.annotations).toEqual({ 'example.com/owner': 'dba', 'backup.example.com/skip': 'true' });
    expect(spec('Deployment').metadata.labels).toMatchObject({ 'example.com/team': 'ml', 'tier': 'web', 'app.kubernetes.io/component': 'tracking-server' });
    expect(spec('CronJob', 'mlflow-gc').metadata.labels['example.com/team']).toBe('platform');
  });

  test('an empty list or {} clears the stack\'s setting for that part', () => {
    const minio = spec('StatefulSet', 'mlflow-minio').spec;
    expect(minio.affinity).toBeUndefined();
    expect(minio.tolerations).toBeUndefined();
    expect(minio.imagePullSecrets).toBeUndefined();
    expect(minio.nodeSelector).toEqual({ 'node.example.com/pool': 'ml' });
  });
});

test('the bucket Job\'s name hashes its pod settings (its template is immutable), and is unchanged without them', () => {
  const name = (props: Partial<MlflowStackProps>) => one(synthStack(props), 'Job').metadata.name;
  const plain = name({});
  expect(name({ pods: {} })).toBe(plain);
  expect(name({ pods: { tolerations: [] }, bucketJob: { pods: { labels: {} } } })).toBe(plain);
  expect(name({ pods: POD_SETTINGS })).not.toBe(plain);
  expect(name({ bucketJob: { pods: { priorityClassName: 'batch' } } })).not.toBe(name({ bucketJob: { pods: { priorityClassName: 'other' } } }));
});

test('without pod settings no pod has any of the fields', () => {
  for (const { spec } of podSpecs(synthStack({ garbageCollection: {} }))) {
    for (const field of ['nodeSelector', 'tolerations', 'affinity', 'priorityClassName', 'imagePullSecrets']) expect(spec[field]).toBeUndefined();
  }
});

describe('bad pod settings are refused, naming the setting', () => {
  test.each<[string, Partial<MlflowStackProps>, string, RegExp]>([
    ['a selector label of the stack', { pods: { labels: { 'app.kubernetes.io/instance': 'other' } } }, 'pods.labels', /app\.kubernetes\.io\/instance is set by the stack on every pod/],
    ['another label of the stack, in a part', { server: { pods: { labels: { 'app.kubernetes.io/version': 'x' } } } }, 'server.pods.labels', /app\.kubernetes\.io\/version is set by the stack/],
    ['a label key Kubernetes refuses', { pods: { labels: { 'bad key': 'x' } } }, 'pods.labels', /"bad key" is not a valid label key/],
    ['a label value Kubernetes refuses', { backup: { pods: { labels: { team: 'a/b' } } } }, 'backup.pods.labels', /the value of team must be empty or at most 63/],
    ['a node selector key Kubernetes refuses', { pods: { nodeSelector: { '-pool': 'ml' } } }, 'pods.nodeSelector', /"-pool" is not a valid node label key/],
    ['an annotation key Kubernetes refuses', { bucketJob: { pods: { annotations: { 'Example.com/x': 'y' } } } }, 'bucketJob.pods.annotations', /not a valid annotation key/],
    ['a priority class that is no name', { backendStore: BackendStore.postgres({ pods: { priorityClassName: 'High' } }) }, 'backendStore.postgres.pods.priorityClassName', /must be a DNS subdomain/],
    ['a pull secret without a name', { pods: { imagePullSecrets: [{ name: '' }] } }, 'pods.imagePullSecrets.0', /must be a DNS subdomain/],
    ['an unknown toleration operator', { pods: { tolerations: [{ key: 'gpu', operator: 'Exist' }] } }, 'pods.tolerations.0', /operator must be one of Equal, Exists; got "Exist"/],
    ['a toleration without key that is not Exists', { artifactStore: ArtifactStore.minio({ pods: { tolerations: [{ value: 'x' }] } }) }, 'artifactStore.minio.pods.tolerations.0', /without key must have operator Exists/],
    ['a value with Exists', { pods: { tolerations: [{ key: 'gpu', operator: 'Exists', value: 'yes' }] } }, 'pods.tolerations.0', /value must be empty with operator Exists/],
    ['an unknown taint effect', { pods: { tolerations: [{ key: 'gpu', effect: 'NoScheduling' }] } }, 'pods.tolerations.0', /effect must be one of NoSchedule, PreferNoSchedule, NoExecute/],
    ['tolerationSeconds without NoExecute', { garbageCollection: { pods: { tolerations: [{ key: 'gpu', effect: 'NoSchedule', tolerationSeconds: 30 }] } } }, 'garbageCollection.pods.tolerations.0', /tolerationSeconds needs effect NoExecute/],
    ['a weight out of range', { pods: { affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 0, preference: {} }] } } } }, 'pods.affinity.nodeAffinity', /weight must be an integer from 1 to 100; got 0/],
    ['a node operator Kubernetes does not know', { pods: { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'a', operator: 'in' }] }] } } } } }, 'pods.affinity.nodeAffinity', /operator must be one of In, NotIn, Exists, DoesNotExist, Gt, Lt/],
    ['an empty topology key', { server: { pods: { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: '' }] } } } } }, 'server.pods.affinity.podAntiAffinity', /topologyKey must not be empty/],
  ])('%s', (_what, props, key, message) => {
    const err = thrown(() => synthStack(props));
    expect(err.message).toMatch(message);
    expect(err.keys[0]).toBe(key);
  });
});

describe('mlflow.yaml', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mlflow-pods-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const ENV = path.resolve(__dirname, '..', '.env.example');
  const write = (text: string) => {
    const file = path.join(dir, `${Math.random().toString(36).slice(2)}.yaml`);
    fs.writeFileSync(file, text);
    return file;
  };
  const synth = (props: MlflowStackProps): Manifest[] => {
    const chart = new Chart(Testing.app(), 'mlflow');
    new MlflowStack(chart, 'mlflow', props);
    return Testing.synth(chart) as Manifest[];
  };

  test('Kubernetes YAML pasted into pods gives the same output as the props', () => {
    const yaml = `
pods:
  nodeSelector: { node.example.com/pool: ml }
  tolerations: [{key: dedicated, operator: Equal, value: ml, effect: NoSchedule}]
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
          - matchExpressions: [{ key: kubernetes.io/arch, operator: In, values: [amd64] }]
  priorityClassName: ml-platform
  imagePullSecrets: [{ name: registry-pull }]
  annotations: { example.com/owner: ml-team }
  labels: { example.com/team: ml }
server:
  pods:
    priorityClassName: server-critical
    affinity:
      podAntiAffinity:
        preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 50
            podAffinityTerm:
              topologyKey: topology.kubernetes.io/zone
              labelSelector: { matchLabels: { app.kubernetes.io/component: tracking-server } }
backendStore:
  postgres: { pods: { tolerations: [{ key: storage, operator: Exists }] } }
artifactStore:
  minio: { pods: { annotations: { example.com/owner: storage } } }
bucketJob: { pods: { priorityClassName: batch } }
backup: { pods: { nodeSelector: { node.example.com/pool: batch } } }
garbageCollection: { pods: { labels: { example.com/team: platform } } }
`;
    const fromYaml = synth(AppConfig.load(write(yaml)).stackProps(ENV));
    const fromProps = synth({
      credentials: Credentials.fromEnvFile(ENV),
      pods: POD_SETTINGS,
      server: {
        pods: {
          priorityClassName: 'server-critical',
          affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 50, podAffinityTerm: { topologyKey: 'topology.kubernetes.io/zone', labelSelector: { matchLabels: { 'app.kubernetes.io/component': 'tracking-server' } } } }] } },
        },
      },
      backendStore: BackendStore.postgres({ pods: { tolerations: [{ key: 'storage', operator: 'Exists' }] } }),
      artifactStore: ArtifactStore.minio({ pods: { annotations: { 'example.com/owner': 'storage' } } }),
      bucketJob: { pods: { priorityClassName: 'batch' } },
      backup: { pods: { nodeSelector: { 'node.example.com/pool': 'batch' } } },
      garbageCollection: { pods: { labels: { 'example.com/team': 'platform' } } },
    });
    expect(fromYaml).toEqual(fromProps);
    expect(one(fromYaml, 'Deployment').spec.template.spec.affinity.podAntiAffinity).toBeDefined();
  });

  test('a mistake in pasted Kubernetes YAML names its line and what is allowed', () => {
    const typo = 'pods:\n  tolerations:\n    - key: gpu\n      operater: Exists\n';
    expect(() => AppConfig.load(write(typo))).toThrow(/line 4: unknown key pods\.tolerations\.0\.operater \(did you mean operator\?\); allowed in pods\.tolerations\.0: effect, key, operator, tolerationSeconds, value/);
    expect(() => AppConfig.load(write('server:\n  pods:\n    nodeSelectors: {}\n'))).toThrow(/line 3: unknown key server\.pods\.nodeSelectors \(did you mean nodeSelector\?\)/);
    expect(() => AppConfig.load(write('pods:\n  nodeSelector: { pool: 1 }\n'))).toThrow(/line 2: pods\.nodeSelector\.pool must be string; got 1/);
  });

  test('a value the library refuses is reported at its line', () => {
    const file = write('name: mlflow\npods:\n  tolerations:\n    - { key: gpu, operator: Exists }\n    - { key: gpu, operator: Exist }\n');
    const config = AppConfig.load(file);
    const err = thrown(() => synth(config.stackProps(ENV)));
    expect(config.locate(err.message, [...err.keys])).toMatch(new RegExp(`^${file} line 5: pods\\.tolerations\\[1\\]: operator must be one of Equal, Exists`));
  });
});

test('the settings schema holds PodOptions once, and every library type inside a shared struct is one the converter makes', () => {
  const refs: string[] = [];
  const types: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (node === null || typeof node !== 'object') return;
    const n = node as SettingSchema;
    if (typeof n.$ref === 'string') refs.push(n.$ref);
    if (typeof n['x-type'] === 'string') types.push(n['x-type']);
    Object.values(n).forEach(walk);
  };
  walk(SETTINGS_SCHEMA);
  expect(refs.filter((r) => r === '#/definitions/cdk8s-mlflow.PodOptions')).toHaveLength(8);
  for (const ref of refs) expect(SETTINGS_SCHEMA.definitions[ref.slice('#/definitions/'.length)]).toBeDefined();
  expect(types.filter((t) => !YAML_TYPES[t] && t !== 'cdk8s-mlflow.Credentials')).toEqual([]);
  expect(Object.keys(SETTINGS_SCHEMA.definitions['cdk8s-mlflow.PodOptions'].properties)).toEqual(['nodeSelector', 'tolerations', 'affinity', 'priorityClassName', 'imagePullSecrets', 'annotations', 'labels']);
});
