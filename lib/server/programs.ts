import * as fs from 'fs';
import * as path from 'path';

/**
 * The Python programs the MLflow containers run, kept as `.py` files next to this one (and copied
 * next to the built and bundled code). Each reads the database URI from MLFLOW_BACKEND_STORE_URI
 * and never prints it.
 */
function program(file: string): string {
  return fs.readFileSync(path.join(__dirname, file), 'utf8');
}

/**
 * The `migrate` init container's program (`migrate.py`). MLflow guards its own migrations only with
 * a file lock inside one pod and does not support old servers writing during or after a schema
 * upgrade. This waits (bounded) for the database, fails fast on rejected credentials, and under a
 * lock that serializes every pod (PostgreSQL advisory lock, MySQL named lock) creates the schema, or,
 * when a migration is pending, first stops every running MLflow through the writer fence (see
 * `launcherProgram`), then migrates. Without a pending migration it changes nothing.
 */
export function migrationProgram(): string {
  return program('migrate.py');
}

/**
 * The launcher (`serve.py`) every long-running MLflow process runs under: it holds the writer fence
 * (a shared PostgreSQL advisory lock) while the program runs and stops the program when a migration
 * asks for the fence.
 */
export function launcherProgram(): string {
  return program('serve.py');
}

/**
 * The metrics listener (`metrics_listener.py`) beside the server: it serves the Prometheus files of
 * MLflow's workers, and nothing else, on the metrics port.
 */
export function metricsListenerProgram(): string {
  return program('metrics_listener.py');
}
