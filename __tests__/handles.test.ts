import { ApiObject, Chart, JsonPatch, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { ArtifactStore, BackendStore, Credentials, MlflowStack, MlflowStackProps } from '../lib';
import { Manifest, one, TEST_VALUES } from './support/synth';

/** The stack's main objects as typed read-only handles, as cdk8s-plus and AWS CDK constructs expose theirs. */

function stackOf(props: Partial<MlflowStackProps> = {}): { stack: MlflowStack; chart: Chart } {
  const chart = new Chart(Testing.app(), 'test');
  const stack = new MlflowStack(chart, 'mlflow', { credentials: Credentials.fromValues(TEST_VALUES), ...props });
  return { stack, chart };
}

test('the default stack: the server\'s Deployment and Service, both StatefulSets, the bucket Job, the Secret, the backup', () => {
  const { stack } = stackOf();
  expect(stack.serverDeployment).toBeInstanceOf(kplus.Deployment);
  expect(stack.serverDeployment.name).toBe('mlflow');
  expect(stack.serverService).toBeInstanceOf(kplus.Service);
  expect(stack.serverService.name).toBe(stack.serviceName);
  expect(stack.backendStoreStatefulSet).toBeInstanceOf(k8s.KubeStatefulSet);
  expect(stack.backendStoreStatefulSet!.name).toBe('mlflow-postgres');
  expect(stack.artifactStoreStatefulSet!.name).toBe('mlflow-minio');
  expect(stack.bucketJob).toBeInstanceOf(kplus.Job);
  expect(stack.bucketJob.name).toBe(stack.bucketJobName);
  expect(stack.credentialsSecret).toBeInstanceOf(kplus.Secret);
  expect(stack.credentialsSecret!.name).toBe(stack.secretName);
  expect(stack.backupCronJob!.name).toBe('mlflow-backup');
  expect(stack.garbageCollectionCronJob).toBeUndefined();
});

test('what the stack does not make has no handle: external stores, an existing Secret, no backup', () => {
  const { stack } = stackOf({
    credentials: Credentials.fromSecretName('team-mlflow'),
    backendStore: BackendStore.external({ host: 'db.example.com' }),
    artifactStore: ArtifactStore.s3({ endpoint: 'https://s3.example.com' }),
    garbageCollection: {},
  });
  expect(stack.backendStoreStatefulSet).toBeUndefined();
  expect(stack.artifactStoreStatefulSet).toBeUndefined();
  expect(stack.credentialsSecret).toBeUndefined();
  expect(stack.backupCronJob).toBeUndefined();
  expect(stack.garbageCollectionCronJob!.name).toBe('mlflow-gc');
  expect(stack.bucketJob.name).toMatch(/^mlflow-bucket-[0-9a-f]{8}$/);
});

test('SeaweedFS is the artifact store\'s StatefulSet', () => {
  expect(stackOf({ artifactStore: ArtifactStore.seaweedfs() }).stack.artifactStoreStatefulSet!.name).toBe('mlflow-seaweedfs');
});

test('a handle is the object in the output: a change through it lands there, still in stored form', () => {
  const { stack, chart } = stackOf();
  ApiObject.of(stack.serverDeployment).addJsonPatch(JsonPatch.add('/spec/template/spec/hostAliases', [{ ip: '10.0.0.1', hostnames: ['proxy.corp'] }]));
  stack.backendStoreStatefulSet!.addJsonPatch(JsonPatch.add('/spec/template/spec/terminationGracePeriodSeconds', 120));
  ApiObject.of(stack.serverService).metadata.addAnnotation('example.com/owner', 'ml-team');
  const objects = Testing.synth(chart) as Manifest[];
  expect(one(objects, 'Deployment').spec.template.spec.hostAliases).toEqual([{ hostnames: ['proxy.corp'], ip: '10.0.0.1' }]);
  expect(one(objects, 'StatefulSet', 'mlflow-postgres').spec.template.spec.terminationGracePeriodSeconds).toBe(120);
  expect(one(objects, 'Service', 'mlflow').metadata.annotations).toEqual({ 'example.com/owner': 'ml-team' });
});
