import * as kplus from 'cdk8s-plus-28';
import { SecretKeys } from '../credentials/secret-keys';
import { DatabaseDump } from './database-dump';

/** The UID of the `postgres` user in the Debian-based image. */
export const POSTGRES_UID = 999;

/** `pg_dump --format=custom` of a PostgreSQL database, with the image's client (its major version must be at least the server's). */
export function pgDump(host: string, port: number, image: string): DatabaseDump {
  return {
    appName: 'postgresql',
    image,
    uid: POSTGRES_UID,
    script: (pipe, status) => `
set -eu
mkfifo -m 666 ${pipe}
if pg_dump --format=custom > ${pipe}; then echo ok > ${status}; else echo failed > ${status}; fi
[ "$(cat ${status})" = ok ] || { echo "backup: pg_dump of database $PGDATABASE failed" >&2; exit 1; }
echo "backup: dumped database $PGDATABASE"
`.trimStart(),
    env: (secret) => ({
      PGHOST: kplus.EnvValue.fromValue(host),
      PGPORT: kplus.EnvValue.fromValue(String(port)),
      PGUSER: secret.envValue(SecretKeys.POSTGRES_USER),
      PGPASSWORD: secret.envValue(SecretKeys.POSTGRES_PASSWORD),
      PGDATABASE: secret.envValue(SecretKeys.POSTGRES_DB),
      PGCONNECT_TIMEOUT: kplus.EnvValue.fromValue('30'),
    }),
  };
}
