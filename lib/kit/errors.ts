/**
 * A mistake in the user's configuration: a `.env` key, a prop, a file.
 *
 * The message is one line that names the key or prop, where it came from and what is allowed.
 * `keys` are the settings it is about, as dotted paths of `MlflowStackProps` (`server.nodePort`),
 * which are also the paths of `mlflow.yaml`: the app puts the file and line of the first one the
 * file holds in front of the message. `main.ts` prints it without a stack trace and exits non-zero.
 *
 * @jsii ignore jsii cannot model a subclass of Error; other languages see a plain error.
 */
export class ConfigError extends Error {
  /** The settings the error is about, most specific first. */
  public readonly keys: readonly string[];

  public constructor(message: string, keys: string | readonly string[] = []) {
    super(message);
    this.name = 'ConfigError';
    this.keys = typeof keys === 'string' ? [keys] : keys;
  }
}
