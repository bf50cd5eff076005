import { Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';

/** Builds a resources struct from plain numbers: CPU in millicores, memory in MiB. */
export function resources(cpuRequestMillis: number, memoryRequestMiB: number, cpuLimitMillis: number, memoryLimitMiB: number): kplus.ContainerResources {
  return {
    cpu: { request: kplus.Cpu.millis(cpuRequestMillis), limit: kplus.Cpu.millis(cpuLimitMillis) },
    memory: { request: Size.mebibytes(memoryRequestMiB), limit: Size.mebibytes(memoryLimitMiB) },
  };
}

/** Converts cdk8s-plus resources to the raw Kubernetes form used by L1 StatefulSets. */
export function toKubeResources(r: kplus.ContainerResources): k8s.ResourceRequirements {
  const quantities = (cpu?: kplus.Cpu, memory?: Size) => {
    const out: Record<string, k8s.Quantity> = {};
    if (cpu) out.cpu = k8s.Quantity.fromString(cpu.amount);
    if (memory) out.memory = k8s.Quantity.fromString(`${memory.toMebibytes()}Mi`);
    return out;
  };
  return {
    requests: quantities(r.cpu?.request, r.memory?.request),
    limits: quantities(r.cpu?.limit, r.memory?.limit),
  };
}

/** A storage size as a Kubernetes quantity. */
export function storageQuantity(size: Size): k8s.Quantity {
  return k8s.Quantity.fromString(`${size.toMebibytes()}Mi`);
}
