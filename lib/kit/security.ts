import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';

/**
 * Security settings that satisfy the Pod Security Standards "restricted" profile, defined once in
 * cdk8s-plus's shape; the stores' L1 pod specs get the same settings through cdk8s-plus's own
 * conversion to the Kubernetes spec. Every container sets `seccompProfile` itself (cdk8s-plus has
 * no pod-level one).
 */

/** Container security, running as `uid`. */
export function restrictedContainer(uid: number): kplus.ContainerSecurityContextProps {
  return {
    user: uid,
    group: uid,
    ensureNonRoot: true,
    privileged: false,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: [kplus.Capability.ALL] },
    seccompProfile: { type: kplus.SeccompProfileType.RUNTIME_DEFAULT },
  };
}

/** Pod security; `fsGroup` makes mounted volumes writable for `uid`. */
export function restrictedPod(uid: number): kplus.PodSecurityContextProps {
  return { user: uid, group: uid, fsGroup: uid, ensureNonRoot: true, fsGroupChangePolicy: kplus.FsGroupChangePolicy.ON_ROOT_MISMATCH };
}

/** `restrictedContainer` as a Kubernetes container security context. */
export function restrictedContainerSpec(uid: number): k8s.SecurityContext {
  return new kplus.ContainerSecurityContext(restrictedContainer(uid))._toKube();
}

/** `restrictedPod` as a Kubernetes pod security context. */
export function restrictedPodSpec(uid: number): k8s.PodSecurityContext {
  return new kplus.PodSecurityContext(restrictedPod(uid))._toKube();
}
