import * as fs from 'fs';
import * as path from 'path';

/**
 * The Python program the tracking server's `migrate` init container runs before the server
 * starts: `migrate.py`, next to this file (and copied next to the built and bundled code).
 *
 * MLflow creates or refuses out-of-date tables on start and guards that with a file lock that
 * exists only inside one pod, so two replicas on a fresh or older database race. The program
 * waits (bounded) for PostgreSQL, fails fast on rejected credentials, then creates or upgrades
 * the schema (and basic auth's, when it is on) while holding a PostgreSQL advisory lock, which
 * serializes it across every pod. It reads the URI from MLFLOW_BACKEND_STORE_URI and never prints it.
 */
export function migrationProgram(): string {
  return fs.readFileSync(path.join(__dirname, 'migrate.py'), 'utf8');
}
