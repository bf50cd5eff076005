import { Duration, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Credentials } from '../credentials/credentials';
import type { MlflowStackProps } from '../mlflow-stack';
import { Permission } from '../server/auth';
import { ArtifactServing, ServiceExposure } from '../server/tracking-server';
import { ArtifactStore } from '../stores/artifact-store';
import { BackendStore, DatabaseEngine } from '../stores/backend-store';
import { Settings, SettingsFile } from './settings-file';

/**
 * The app's configuration, without code: credentials from a `.env` file (or an existing Secret the
 * settings name) and every other setting from a YAML file whose keys mirror `MlflowStackProps`.
 */
export class AppConfig {
  /**
   * Reads and checks the settings file (YAML, see `mlflow.example.yaml`); errors name the file, the
   * line and what is allowed.
   * @param settingsFile the file; none means the library's defaults
   */
  public static load(settingsFile?: string): AppConfig {
    return new AppConfig(settingsFile === undefined ? undefined : new SettingsFile(settingsFile));
  }

  /** Whether the credentials come from a `.env` file (not from an existing Secret the settings name). */
  public readonly needsCredentialsFile: boolean;
  /** Whether any public host name or address is configured (settings or Ingress). */
  public readonly hasPublicHost: boolean;

  private constructor(private readonly file?: SettingsFile) {
    const s: Settings = file?.settings ?? {};
    this.needsCredentialsFile = s.credentials?.existingSecret === undefined;
    this.hasPublicHost = (s.server?.publicHosts?.length ?? 0) > 0 || (s.server?.allowedHosts?.length ?? 0) > 0 || s.ingress?.host !== undefined || (s.httpRoute?.hostnames?.length ?? 0) > 0;
  }

  /**
   * The stack's props: the settings, with credentials from `envFile` (read only when `needsCredentialsFile`).
   * @param envFile the credentials file (`.env`)
   */
  public stackProps(envFile: string): MlflowStackProps {
    const s: Settings = this.file?.settings ?? {};
    return {
      credentials: this.needsCredentialsFile ? Credentials.fromEnvFile(envFile) : Credentials.fromSecretName(s.credentials.existingSecret),
      name: s.name,
      namespace: s.namespace,
      createNamespace: s.createNamespace,
      clusterDomain: s.clusterDomain,
      server: s.server && {
        ...s.server,
        artifactServing: s.server.artifactServing as ArtifactServing | undefined,
        databaseWaitTimeout: duration(s.server.databaseWaitTimeout),
        exposure: s.server.exposure as ServiceExposure | undefined,
        resources: resources(s.server.resources),
      },
      backendStore: backendStore(s.backendStore),
      artifactStore: artifactStore(s.artifactStore),
      bucketJob: s.bucketJob && { ...s.bucketJob, waitTimeout: duration(s.bucketJob.waitTimeout) },
      auth: s.auth && { ...s.auth, defaultPermission: s.auth.defaultPermission as Permission | undefined, credentialCacheTtl: duration(s.auth.credentialCacheTtl) },
      networkPolicies: s.networkPolicies,
      ingress: s.ingress && { ...s.ingress, maxBodySize: size(s.ingress.maxBodySize) },
      httpRoute: s.httpRoute,
      sso: s.sso && { ...s.sso, sessionLifetime: duration(s.sso.sessionLifetime) },
      metrics: s.metrics && { ...s.metrics, interval: duration(s.metrics.interval) },
      garbageCollection: s.garbageCollection && { ...s.garbageCollection, olderThan: duration(s.garbageCollection.olderThan) },
      backup: s.backup && { ...s.backup, retention: duration(s.backup.retention) },
    };
  }

  /**
   * An error message of the library, with the settings file and line of the key it names
   * (`server.nodePort`) in front when the key is in the file.
   * @param message a `ConfigError`'s message
   */
  public locate(message: string): string {
    const keyPath = /\b([a-z][A-Za-z]*(?:\.[a-z][A-Za-z]*)+)\b/.exec(message)?.[1];
    const where = keyPath && this.file ? this.file.where(keyPath) : undefined;
    return where && where !== this.file?.path ? `${where}: ${message}` : message;
  }
}

function duration(text: string | undefined): Duration | undefined {
  if (text === undefined) return undefined;
  const amount = Number(text.slice(0, -1));
  switch (text.slice(-1)) {
    case 's': return Duration.seconds(amount);
    case 'm': return Duration.minutes(amount);
    case 'h': return Duration.hours(amount);
    default: return Duration.days(amount);
  }
}

function size(text: string | undefined): Size | undefined {
  if (text === undefined) return undefined;
  const amount = Number(text.slice(0, -2));
  return text.endsWith('Ti') ? Size.tebibytes(amount) : text.endsWith('Gi') ? Size.gibibytes(amount) : Size.mebibytes(amount);
}

function cpu(text: string | undefined): kplus.Cpu | undefined {
  if (text === undefined) return undefined;
  return text.endsWith('m') ? kplus.Cpu.millis(Number(text.slice(0, -1))) : kplus.Cpu.units(Number(text));
}

function resources(r: Settings | undefined): kplus.ContainerResources | undefined {
  if (r === undefined) return undefined;
  return {
    cpu: { request: cpu(r.requests?.cpu), limit: cpu(r.limits?.cpu) },
    memory: { request: size(r.requests?.memory), limit: size(r.limits?.memory) },
  };
}

function inClusterStore(s: Settings) {
  return { ...s, storage: size(s.storage), resources: resources(s.resources) };
}

function backendStore(s: Settings | undefined): BackendStore | undefined {
  if (s?.postgres) return BackendStore.postgres(inClusterStore(s.postgres));
  if (s?.external) return BackendStore.external({ ...s.external, engine: s.external.engine as DatabaseEngine | undefined });
  return undefined;
}

function artifactStore(s: Settings | undefined): ArtifactStore | undefined {
  if (s?.minio) return ArtifactStore.minio(inClusterStore(s.minio));
  if (s?.seaweedfs) return ArtifactStore.seaweedfs(inClusterStore(s.seaweedfs));
  if (s?.s3) return ArtifactStore.s3(s.s3);
  return undefined;
}
