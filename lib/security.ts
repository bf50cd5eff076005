import * as kplus from 'cdk8s-plus-28';

/**
 * Security settings that satisfy the Pod Security Standards "restricted" profile.
 * One definition, in the two shapes the stack needs: cdk8s-plus props and the raw Kubernetes spec.
 */

/** Container security for cdk8s-plus workloads, running as `uid`. */
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

/** Pod security for cdk8s-plus workloads; `fsGroup` makes mounted volumes writable for `uid`. */
export function restrictedPod(uid: number): kplus.PodSecurityContextProps {
  return { user: uid, group: uid, fsGroup: uid, ensureNonRoot: true, fsGroupChangePolicy: kplus.FsGroupChangePolicy.ON_ROOT_MISMATCH };
}

/** Container security for raw (L1) pod specs. */
export function restrictedContainerSpec(uid: number) {
  return {
    runAsUser: uid,
    runAsGroup: uid,
    runAsNonRoot: true,
    privileged: false,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** Pod security for raw (L1) pod specs. */
export function restrictedPodSpec(uid: number) {
  return {
    runAsUser: uid,
    runAsGroup: uid,
    runAsNonRoot: true,
    fsGroup: uid,
    fsGroupChangePolicy: 'OnRootMismatch',
    seccompProfile: { type: 'RuntimeDefault' },
  };
}
