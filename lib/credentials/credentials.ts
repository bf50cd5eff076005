import * as fs from 'fs';
import { ConfigError } from '../kit/errors';
import { checkDnsSubdomain, checkNonEmpty } from '../kit/validate';
import { CREDENTIAL_KEYS } from './credential-keys';
import { CredentialValues } from './credential-values';
import { valuesFromEnvText } from './env-file';

/**
 * Where the stack's credentials come from. Create with a static factory.
 */
export abstract class Credentials {
  /**
   * Read a `.env` file (parsed by dotenv): the keys of `SecretKeys`, each checked by its rule (the
   * README's `.env` table lists them, required ones first). The stack turns them into a Secret.
   */
  public static fromEnvFile(path: string): Credentials {
    let text: string;
    try {
      text = fs.readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read the credentials file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const { values, lines } = valuesFromEnvText(text, path);
    return new ValueCredentials(values, path, lines);
  }

  /** Credentials given as values (for tests or apps that read them elsewhere). The stack turns them into a Secret. */
  public static fromValues(values: CredentialValues): Credentials {
    return new ValueCredentials(values, 'Credentials.fromValues');
  }

  /**
   * A Secret you create yourself (GitOps: no credential is written to `dist/`). It must hold the
   * keys the stack reads (the README's `.env` table, as the configuration uses them) and
   * MLFLOW_BACKEND_STORE_URI. See the README for their values.
   */
  public static fromSecretName(secretName: string): Credentials {
    return new ExistingSecretCredentials(checkDnsSubdomain(secretName, 'credentials.existingSecret'));
  }

  /** The values to write into a Secret, or undefined when the Secret already exists. */
  public abstract readonly values?: CredentialValues;
  /** The name of the existing Secret, or undefined when the stack creates it. */
  public abstract readonly existingSecretName?: string;
  /** Where the values came from, for error messages. */
  public abstract readonly source: string;
}

class ValueCredentials extends Credentials {
  public readonly values: CredentialValues;
  public readonly existingSecretName = undefined;
  public constructor(values: CredentialValues, public readonly source: string, lines: ReadonlyMap<string, number> = new Map()) {
    super();
    this.values = checkValues(values, (key) => (lines.has(key) ? `${source} line ${lines.get(key)}` : source));
  }
}

class ExistingSecretCredentials extends Credentials {
  public readonly values = undefined;
  public readonly source: string;
  public constructor(public readonly existingSecretName: string) {
    super();
    this.source = `Secret ${existingSecretName}`;
  }
}

/** Each value against its key's rules (see CREDENTIAL_KEYS); errors begin with `where(key)`. */
function checkValues(values: CredentialValues, where: (key: string) => string): CredentialValues {
  const checked: Record<string, string> = {};
  for (const c of CREDENTIAL_KEYS) {
    const value = values[c.field];
    if (value === undefined && !c.required) continue;
    try {
      checkNonEmpty(value, c.key);
      const problem = c.check?.(value!);
      if (problem) throw new ConfigError(`${c.key} ${problem}`, c.key);
      checked[c.field] = c.normalize ? c.normalize(value!) : value!;
    } catch (err) {
      if (err instanceof ConfigError) throw new ConfigError(`${where(c.key)}: ${err.message}`, err.keys);
      throw err;
    }
    if (c.needs !== undefined && !CREDENTIAL_KEYS.some((n) => n.key === c.needs && values[n.field] !== undefined)) {
      throw new ConfigError(`${where(c.key)}: ${c.key} is set but ${c.needs} is not`, c.key);
    }
  }
  return checked as unknown as CredentialValues;
}
