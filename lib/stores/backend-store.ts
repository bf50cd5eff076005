import { Construct } from 'constructs';
import { CredentialValues } from '../credentials/credential-values';
import { StackContext } from '../kit/context';
import { ConfigError } from '../kit/errors';
import { PartLabels } from '../kit/labels';
import { checkIntegerInRange, checkNonEmpty } from '../kit/validate';
import { postgresUri } from './database-uri';
import { Postgres, PostgresOptions } from './postgres';

/** How the stack reaches its database; what every backend store provides. */
export interface BackendStoreConnection {
  /** Host name or address of the database server. */
  readonly host: string;
  /** TCP port. */
  readonly port: number;
  /** The SQLAlchemy URI for these credentials. */
  databaseUri(values: CredentialValues): string;
  /** Labels of the in-cluster database pods, when the database runs in the cluster. */
  readonly labels?: PartLabels;
  /** The in-cluster server's image, whose `pg_dump` matches it; undefined for an external database. */
  readonly image?: string;
}

/** Options for a PostgreSQL database that runs outside this stack. */
export interface ExternalDatabaseOptions {
  /** Host name or address of the PostgreSQL server. */
  readonly host: string;
  /**
   * TCP port.
   * @default 5432
   */
  readonly port?: number;
  /**
   * libpq `sslmode` (`disable`, `allow`, `prefer`, `require`, `verify-ca`, `verify-full`).
   * @default - libpq's default (`prefer`)
   */
  readonly sslMode?: string;
}

const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

/** Where MLflow keeps run metadata and the model registry. Create with a static factory. */
export abstract class BackendStore {
  /** PostgreSQL inside the cluster: a StatefulSet with a PersistentVolumeClaim that outlives uninstall. */
  public static postgres(options: PostgresOptions = {}): BackendStore {
    return new InClusterPostgres(options);
  }

  /** A PostgreSQL database you already run (e.g. a managed service); user, password and database come from the credentials. */
  public static external(options: ExternalDatabaseOptions): BackendStore {
    return new ExternalDatabase(options);
  }

  /**
   * Creates whatever the store needs in `scope` and says how to reach it.
   * @internal
   */
  public abstract _bind(scope: Construct, context: StackContext): BackendStoreConnection;
}

class InClusterPostgres extends BackendStore {
  public constructor(private readonly options: PostgresOptions) {
    super();
  }

  public _bind(scope: Construct, context: StackContext): BackendStoreConnection {
    const postgres = new Postgres(scope, 'postgres', context, this.options);
    const { host, port } = postgres;
    return {
      host,
      port,
      labels: postgres.labels,
      image: postgres.image,
      databaseUri: (v) => postgresUri({ user: v.postgresUser, password: v.postgresPassword, database: v.postgresDb, host, port, query: '' }),
    };
  }
}

class ExternalDatabase extends BackendStore {
  private readonly host: string;
  private readonly port: number;
  private readonly query: string;

  public constructor(options: ExternalDatabaseOptions) {
    super();
    this.host = checkNonEmpty(options.host, 'BackendStore.external({ host })');
    if (!/^[A-Za-z0-9.:\-[\]]+$/.test(this.host)) {
      throw new ConfigError(`BackendStore.external({ host }) must be a host name or IP address; got ${JSON.stringify(this.host)}`);
    }
    this.port = checkIntegerInRange(options.port ?? 5432, 'BackendStore.external({ port })', 1, 65535);
    if (options.sslMode !== undefined && !SSL_MODES.includes(options.sslMode)) {
      throw new ConfigError(`BackendStore.external({ sslMode }) must be one of ${SSL_MODES.join(', ')}; got ${JSON.stringify(options.sslMode)}`);
    }
    this.query = options.sslMode ? `?sslmode=${options.sslMode}` : '';
  }

  public _bind(): BackendStoreConnection {
    const { host, port, query } = this;
    return {
      host,
      port,
      databaseUri: (v) => postgresUri({ user: v.postgresUser, password: v.postgresPassword, database: v.postgresDb, host, port, query }),
    };
  }
}
