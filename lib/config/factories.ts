import { ArtifactStore } from '../stores/artifact-store';
import { BackendStore } from '../stores/backend-store';

/**
 * The classes `mlflow.yaml` makes through a static factory (`backendStore: { external: {...} }` is
 * `BackendStore.external({...})`), by the name the settings schema gives them (`x-factory`).
 * __tests__/settings.test.ts fails when the schema names a class missing here.
 */
export const FACTORIES: Record<string, unknown> = { ArtifactStore, BackendStore };
