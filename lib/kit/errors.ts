/**
 * A mistake in the user's configuration: a `.env` key, a prop, a file.
 *
 * The message is one line that names the key or prop, where it came from and what is allowed.
 * `main.ts` prints it without a stack trace and exits non-zero.
 *
 * @jsii ignore jsii cannot model a subclass of Error; other languages see a plain error.
 */
export class ConfigError extends Error {
  public constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
