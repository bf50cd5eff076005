import { ApiObject, JsonPatch, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Construct, IConstruct } from 'constructs';

/**
 * The API server stores some values differently from how cdk8s-plus writes them (`2000m` is
 * stored as `2`, `hostNetwork: false` is dropped, ...). Every such difference makes a re-apply
 * report "configured" and a server-side apply over a client-side one conflict, so the stack
 * writes each value the way the server keeps it.
 */

/** A CPU amount in the API server's canonical form: whole cores as a number, else millicores. */
export function canonicalCpu(cpu: kplus.Cpu): string {
  const millis = cpu.amount.endsWith('m') ? Number(cpu.amount.slice(0, -1)) : Math.round(Number(cpu.amount) * 1000);
  return millis % 1000 === 0 ? String(millis / 1000) : `${millis}m`;
}

/** A memory or storage size in the API server's canonical form: the largest binary suffix that stays whole. */
export function canonicalSize(size: Size): string {
  const mebibytes = size.toMebibytes();
  if (mebibytes % (1024 * 1024) === 0) return `${mebibytes / (1024 * 1024)}Ti`;
  if (mebibytes % 1024 === 0) return `${mebibytes / 1024}Gi`;
  return `${mebibytes}Mi`;
}

/** Resources in canonical form, as raw Kubernetes values. */
export function canonicalResources(r: kplus.ContainerResources): k8s.ResourceRequirements {
  const quantities = (cpu?: kplus.Cpu, memory?: Size) => {
    const out: Record<string, k8s.Quantity> = {};
    if (cpu) out.cpu = k8s.Quantity.fromString(canonicalCpu(cpu));
    if (memory) out.memory = k8s.Quantity.fromString(canonicalSize(memory));
    return out;
  };
  return { requests: quantities(r.cpu?.request, r.memory?.request), limits: quantities(r.cpu?.limit, r.memory?.limit) };
}

/** A container of a cdk8s-plus workload, by its JSON path in the manifest, and its resources. */
export interface ContainerResourcesAt {
  /** e.g. `/spec/template/spec/containers/0` */
  readonly path: string;
  /** The resources the container was given. */
  readonly resources: kplus.ContainerResources;
}

/**
 * Rewrites a cdk8s-plus workload as the server stores it: canonical resources, no
 * `hostNetwork: false`, and no construct-path label (a path can change between library versions,
 * and a changed template label rolls every pod).
 */
export function inServerForm(workload: IConstruct, templatePath: string, containers: ContainerResourcesAt[]): void {
  const api = ApiObject.of(workload);
  api.addJsonPatch(JsonPatch.remove(`${templatePath}/metadata/labels/cdk8s.io~1metadata.addr`));
  api.addJsonPatch(JsonPatch.remove(`${templatePath}/spec/hostNetwork`));
  for (const c of containers) {
    // Quantity objects, not strings: cdk8s maps patched values through the typed serializer, which turns a plain string into null.
    api.addJsonPatch(JsonPatch.replace(`${c.path}/resources`, canonicalResources(c.resources)));
  }
}

/**
 * A StatefulSet written as the server stores it. The typed `KubeStatefulSet` drops fields its props
 * do not model, and the server fills each claim template with the PVC's type, volume mode and a
 * `Pending` status: without those, every apply would try to rewrite the (immutable) templates.
 * So the typed props are serialized once, completed, and emitted as a plain object.
 */
export function statefulSetInServerForm(scope: Construct, id: string, props: k8s.KubeStatefulSetProps): ApiObject {
  const json = k8s.toJson_KubeStatefulSetProps(props)!;
  for (const template of json.spec.volumeClaimTemplates ?? []) {
    Object.assign(template, { apiVersion: 'v1', kind: 'PersistentVolumeClaim', status: { phase: 'Pending' } });
    template.spec.volumeMode ??= 'Filesystem';
  }
  return new ApiObject(scope, id, { ...k8s.KubeStatefulSet.GVK, ...json });
}
