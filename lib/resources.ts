import { Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';

/** Builds a resources struct from plain numbers: CPU in millicores, memory in MiB. */
export function resources(cpuRequestMillis: number, memoryRequestMiB: number, cpuLimitMillis: number, memoryLimitMiB: number): kplus.ContainerResources {
  return {
    cpu: { request: kplus.Cpu.millis(cpuRequestMillis), limit: kplus.Cpu.millis(cpuLimitMillis) },
    memory: { request: Size.mebibytes(memoryRequestMiB), limit: Size.mebibytes(memoryLimitMiB) },
  };
}
