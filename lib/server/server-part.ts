import * as kplus from 'cdk8s-plus-28';

/**
 * What one concern of the tracking server (auth, metrics, single sign-on, allowed hosts, the AI
 * gateway, jobs, ...) adds to its pod. The Deployment is the concatenation of the parts, in a
 * fixed order (tracking-server.ts), so each concern lives in one file.
 */
export interface ServerPart {
  /** Environment of the `mlflow` container. */
  readonly env?: Record<string, kplus.EnvValue>;
  /** Environment of the `migrate` init container. */
  readonly migrateEnv?: Record<string, kplus.EnvValue>;
  /** Arguments after `mlflow server`'s own. */
  readonly args?: string[];
  /** Mounts of the `mlflow` container. */
  readonly mounts?: kplus.VolumeMount[];
  /** Mounts of the `migrate` init container. */
  readonly migrateMounts?: kplus.VolumeMount[];
  /** Containers beside `mlflow` (a proxy in front of it). */
  readonly sidecars?: kplus.ContainerProps[];
}

/** The parts' contributions of one kind, concatenated in order. */
export function merged<K extends keyof ServerPart>(parts: ServerPart[], kind: K): NonNullable<ServerPart[K]> {
  const present = parts.map((p) => p[kind]).filter((v) => v !== undefined);
  if (kind === 'env' || kind === 'migrateEnv') return Object.assign({}, ...present);
  return present.flat() as unknown as NonNullable<ServerPart[K]>;
}
