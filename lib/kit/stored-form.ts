import { ApiObject } from 'cdk8s';
import { IConstruct } from 'constructs';

/**
 * The API server stores some values differently from how cdk8s and cdk8s-plus write them (`2000m`
 * is stored as `2`, `hostNetwork: false` is dropped, a Secret's `stringData` becomes `data`, ...).
 * Every such difference makes a re-apply report "configured" and a server-side apply over a
 * client-side one conflict. So the stack's objects pass, once, through `storedForm` when they are
 * synthesized.
 */
export function writeInStoredForm(scope: IConstruct): void {
  for (const construct of scope.node.findAll()) {
    if (!(construct instanceof ApiObject)) continue;
    const toJson = construct.toJson.bind(construct);
    construct.toJson = () => storedForm(toJson());
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a manifest is untyped JSON
type Json = any;

/** A manifest as the API server stores it (see `writeInStoredForm`); keys sorted, as cdk8s writes them. */
export function storedForm(manifest: Json): Json {
  const m = structuredClone(manifest);
  switch (m.kind) {
    case 'Secret':
      if (m.stringData) {
        m.data = Object.fromEntries(Object.entries(m.stringData as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]));
        delete m.stringData;
      }
      if (m.immutable === false) delete m.immutable;
      break;
    case 'Service':
      if (m.spec.externalIPs?.length === 0) delete m.spec.externalIPs;
      break;
    case 'Deployment':
      if (m.spec.minReadySeconds === 0) delete m.spec.minReadySeconds;
      break;
    case 'StatefulSet':
      // The server completes each claim template; without these every apply would try to change the (immutable) templates.
      for (const template of m.spec.volumeClaimTemplates ?? []) {
        Object.assign(template, { apiVersion: 'v1', kind: 'PersistentVolumeClaim', status: { phase: 'Pending' } });
        template.spec.volumeMode ??= 'Filesystem';
      }
      break;
    case 'NetworkPolicy':
      if (m.spec.ingress?.length === 0) delete m.spec.ingress;
      break;
  }
  const template = m.kind === 'CronJob' ? m.spec.jobTemplate.spec.template : m.spec?.template;
  if (template) podTemplateInStoredForm(template);
  for (const claim of m.spec?.volumeClaimTemplates ?? []) canonicalQuantities(claim.spec.resources);
  return sortKeys(m, true);
}

function podTemplateInStoredForm(template: Json): void {
  // A construct path can change between library versions, and a changed template label rolls every pod.
  delete template.metadata?.labels?.['cdk8s.io/metadata.addr'];
  const spec = template.spec;
  if (spec.hostNetwork === false) delete spec.hostNetwork;
  for (const container of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) canonicalQuantities(container.resources);
  for (const volume of spec.volumes ?? []) {
    if (volume.emptyDir?.sizeLimit) volume.emptyDir.sizeLimit = canonicalQuantity(volume.emptyDir.sizeLimit);
  }
}

function canonicalQuantities(resources: Json): void {
  for (const group of [resources?.requests, resources?.limits]) {
    for (const key of Object.keys(group ?? {})) group[key] = canonicalQuantity(group[key]);
  }
}

/** CPU as whole cores or millicores; binary sizes with the largest suffix that stays whole. */
export function canonicalQuantity(quantity: string): string {
  const millis = /^(\d+)m$/.exec(quantity);
  if (millis) return Number(millis[1]) % 1000 === 0 ? String(Number(millis[1]) / 1000) : quantity;
  const cores = /^\d+\.\d+$/.exec(quantity);
  if (cores) return canonicalQuantity(`${Math.round(Number(quantity) * 1000)}m`);
  const binary = /^(\d+)(Ki|Mi|Gi|Ti)$/.exec(quantity);
  if (!binary) return quantity;
  const units = ['Ki', 'Mi', 'Gi', 'Ti'];
  let amount = Number(binary[1]);
  let unit = units.indexOf(binary[2]);
  while (unit < units.length - 1 && amount % 1024 === 0 && amount > 0) {
    amount /= 1024;
    unit += 1;
  }
  return `${amount}${units[unit]}`;
}

/** Keys in sorted order at every level; at the top, `apiVersion`, `kind` and `metadata` first. */
function sortKeys(value: Json, top = false): Json {
  if (Array.isArray(value)) return value.map((v) => sortKeys(v));
  if (value === null || typeof value !== 'object') return value;
  const keys = Object.keys(value).sort();
  const ordered = top ? [...['apiVersion', 'kind', 'metadata'].filter((k) => k in value), ...keys.filter((k) => !['apiVersion', 'kind', 'metadata'].includes(k))] : keys;
  return Object.fromEntries(ordered.map((k) => [k, sortKeys(value[k])]));
}
