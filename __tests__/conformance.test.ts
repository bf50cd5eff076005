import * as fs from 'fs';
import { scenarioNames, scenarios, settingsOf, synth } from '../e2e/matrix';
import { CUSTOM_RESOURCES, schemaErrors } from './support/schema';
import { containersOf, Manifest, podSpecs, secretContent, synthStack } from './support/synth';
import { modelOf, unknownFields } from './support/unknown-fields';

/**
 * Checks that hold for every scenario of the matrix (e2e/scenarios/<name>/, synthesized through the
 * app's path): schema, unknown fields, Pod Security "restricted", no leaked secret.
 */
const cases = scenarioNames().map((name) => [name, synth(name)] as [string, Manifest[]]);

test('every scenario holds what a user of the app holds: mlflow.yaml, and credentials.env or an existing Secret', () => {
  expect(cases.length).toBeGreaterThanOrEqual(20);
  const problems = scenarios().flatMap((s) => {
    const found = fs.readdirSync(s.dir).filter((f) => !['mlflow.yaml', 'credentials.env', 'secret.yaml'].includes(f)).map((f) => `${s.name}: unexpected ${f}`);
    const existingSecret = settingsOf(s).credentials?.existingSecret !== undefined;
    if (existingSecret === (s.envFile !== undefined)) found.push(`${s.name}: needs exactly one of credentials.env and credentials.existingSecret`);
    if (s.secretFile && !existingSecret) found.push(`${s.name}: secret.yaml without credentials.existingSecret`);
    return found;
  });
  expect(problems).toEqual([]);
});

describe.each(cases)('%s', (_name, objects) => {
  test('every object is valid against the Kubernetes OpenAPI schema', () => {
    const errors = objects.flatMap((o) => schemaErrors(o).map((e) => `${o.kind}/${o.metadata.name}: ${e}`));
    expect(errors).toEqual([]);
  });

  test('no object has a field the Kubernetes API does not define', () => {
    const unknown = objects.filter((o) => !CUSTOM_RESOURCES.includes(`${o.apiVersion} ${o.kind}`)).flatMap((o) => unknownFields(o, modelOf(o.apiVersion, o.kind)).map((p) => `${o.kind}/${o.metadata.name}${p}`));
    expect(unknown).toEqual([]);
  });

  test('every pod template passes the Pod Security Standards "restricted" profile', () => {
    const violations = podSpecs(objects).flatMap(({ owner, spec }) => restrictedViolations(spec).map((v) => `${owner.kind}/${owner.metadata.name}: ${v}`));
    expect(podSpecs(objects).length).toBeGreaterThan(0);
    expect(violations).toEqual([]);
  });

  test('values are written the way the API server stores them, so a re-apply changes nothing', () => {
    const found: string[] = [];
    const walk = (value: unknown, at: string): void => {
      if (Array.isArray(value)) return value.forEach((v, i) => walk(v, `${at}[${i}]`));
      if (value === null || typeof value !== 'object') return;
      for (const [k, v] of Object.entries(value)) {
        const here = `${at}.${k}`;
        if (k === 'cpu' && typeof v === 'string' && /^\d+000m$/.test(v)) found.push(`${here}=${v} (whole cores)`);
        if ((k === 'memory' || k === 'storage') && typeof v === 'string' && /^\d+Mi$/.test(v) && parseInt(v, 10) % 1024 === 0) found.push(`${here}=${v} (whole Gi)`);
        if (k === 'hostNetwork' && v === false) found.push(`${here}=false`);
        if (k === 'minReadySeconds' && v === 0) found.push(`${here}=0`);
        if (k === 'stringData') found.push(here);
        if (Array.isArray(v) && v.length === 0 && ['externalIPs', 'ingress', 'egress'].includes(k)) found.push(`${here}=[]`);
        walk(v, here);
      }
    };
    for (const o of objects) walk(o, `${o.kind}/${o.metadata.name}`);
    for (const o of objects.filter((x) => x.kind === 'StatefulSet')) {
      for (const t of o.spec.volumeClaimTemplates) expect(t).toMatchObject({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', spec: { volumeMode: 'Filesystem' }, status: { phase: 'Pending' } });
    }
    expect(found).toEqual([]);
  });

  test('no secret value appears outside a Secret object', () => {
    const secrets = objects.filter((o) => o.kind === 'Secret').flatMap((s) => Object.entries(secretContent(s)));
    // Values that are secret; settings such as the database name or region are not, nor are the user
    // names and the access key id (.env.example's is `mlflow`, the stack's own name).
    const secretValues = secrets.filter(([k]) => /PASSWORD|SECRET|URI|\.ini$/.test(k)).map(([, v]) => v);
    const elsewhere = JSON.stringify(objects.filter((o) => o.kind !== 'Secret'));
    for (const value of secretValues) {
      expect(elsewhere.includes(value)).toBe(false);
      expect(elsewhere.includes(JSON.stringify(value).slice(1, -1))).toBe(false);
      expect(elsewhere.includes(Buffer.from(value).toString('base64'))).toBe(false);
    }
  });
});

test('the leak check can fail: a password in an env value is found', () => {
  const objects = synthStack();
  const password = secretContent(objects.find((o) => o.kind === 'Secret')!).POSTGRES_PASSWORD;
  const deployment = objects.find((o) => o.kind === 'Deployment')!;
  deployment.spec.template.spec.containers[0].env.push({ name: 'LEAK', value: password });
  expect(JSON.stringify(objects.filter((o) => o.kind !== 'Secret')).includes(JSON.stringify(password).slice(1, -1))).toBe(true);
});

test('the restricted check can fail: a root container is reported', () => {
  const spec = JSON.parse(JSON.stringify(podSpecs(synthStack())[0].spec));
  spec.containers[0].securityContext.runAsUser = 0;
  spec.containers[0].securityContext.allowPrivilegeEscalation = true;
  spec.hostNetwork = true;
  expect(restrictedViolations(spec)).toEqual(expect.arrayContaining([
    expect.stringContaining('runAsUser 0'), expect.stringContaining('allowPrivilegeEscalation'), expect.stringContaining('hostNetwork'),
  ]));
});

test('the schema and unknown-field checks can fail', () => {
  const service = synthStack().find((o) => o.kind === 'Service')!;
  expect(schemaErrors({ ...service, spec: { ...service.spec, ports: [{ port: 'five' }] } } as any)).not.toEqual([]);
  expect(unknownFields({ ...service, spec: { ...service.spec, nodeport: 1 } }, 'V1Service')).toEqual(['.spec.nodeport']);
});

/** The "restricted" rules of the Pod Security Standards (v1.28), as the admission controller applies them. */
function restrictedViolations(spec: any): string[] {
  const out: string[] = [];
  const pod = spec.securityContext ?? {};
  for (const key of ['hostNetwork', 'hostPID', 'hostIPC']) if (spec[key]) out.push(`${key} is true`);
  for (const v of spec.volumes ?? []) {
    const allowed = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];
    const type = Object.keys(v).find((k) => k !== 'name');
    if (!type || !allowed.includes(type)) out.push(`volume ${v.name} has type ${type}`);
  }
  for (const c of containersOf(spec)) {
    const sc = c.securityContext ?? {};
    const at = `container ${c.name}`;
    if (sc.privileged) out.push(`${at} is privileged`);
    if (sc.allowPrivilegeEscalation !== false) out.push(`${at} does not set allowPrivilegeEscalation false`);
    if (!(sc.runAsNonRoot ?? pod.runAsNonRoot)) out.push(`${at} does not set runAsNonRoot`);
    if ((sc.runAsUser ?? pod.runAsUser) === 0) out.push(`${at} runAsUser 0`);
    const seccomp = (sc.seccompProfile ?? pod.seccompProfile)?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') out.push(`${at} has no RuntimeDefault seccomp profile`);
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) out.push(`${at} does not drop ALL capabilities`);
    const added = (sc.capabilities?.add ?? []).filter((cap: string) => cap !== 'NET_BIND_SERVICE');
    if (added.length) out.push(`${at} adds capabilities ${added.join(', ')}`);
    for (const p of c.ports ?? []) if (p.hostPort) out.push(`${at} uses hostPort ${p.hostPort}`);
  }
  return out;
}
