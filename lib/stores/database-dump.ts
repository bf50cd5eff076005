import * as kplus from 'cdk8s-plus-28';

/** How a backup Job dumps a database: a container that writes the dump into a named pipe. */
export interface DatabaseDump {
  /** The part name the backup's labels carry (`app.kubernetes.io/name`), e.g. `postgresql`. */
  readonly appName: string;
  /** The image with the dump program, unless `backup.image` names another. */
  readonly image: string;
  /** The uid the image's programs run as. */
  readonly uid: number;
  /** The shell program, reading the environment below; it writes into `pipe` and its status into `status`. */
  script(pipe: string, status: string): string;
  /** The environment of the dump container (connection and credentials from the Secret). */
  env(secret: kplus.ISecret): Record<string, kplus.EnvValue>;
}
