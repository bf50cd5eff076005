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

/** The same resources as a raw Kubernetes struct, for the stores' L1 pod specs. */
export function kubeResources(r: kplus.ContainerResources): k8s.ResourceRequirements {
  const quantities = (cpu?: kplus.Cpu, memory?: Size) => {
    const out: Record<string, k8s.Quantity> = {};
    if (cpu) out.cpu = k8s.Quantity.fromString(cpu.amount);
    if (memory) out.memory = kubeSize(memory);
    return out;
  };
  return { requests: quantities(r.cpu?.request, r.memory?.request), limits: quantities(r.cpu?.limit, r.memory?.limit) };
}

/** A size as a Kubernetes quantity (the stored-form pass writes it canonically). */
export function kubeSize(size: Size): k8s.Quantity {
  return k8s.Quantity.fromString(`${size.toMebibytes()}Mi`);
}
