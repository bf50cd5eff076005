import { Construct } from 'constructs';
import { Postgres, PostgresOptions } from './postgres';
import { StoreContext } from './store-context';
import { checkIntegerInRange, checkNonEmpty } from './validate';
import { ConfigError } from './errors';

/** How the tracking server reaches its database; what every backend store provides. */
export interface BackendStoreConnection {
  /** Host name or address of the PostgreSQL server. */
  readonly host: string;
  /** TCP port. */
  readonly port: number;
  /** Query string appended to the database URI, e.g. `?sslmode=require`; empty for none. */
  readonly uriQuery: string;
  /** Labels of the in-cluster database pods, when the database runs in the cluster. */
  readonly podSelector?: { [key: string]: string };
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
  public abstract _bind(scope: Construct, context: StoreContext): BackendStoreConnection;
}

class InClusterPostgres extends BackendStore {
  public constructor(private readonly options: PostgresOptions) {
    super();
  }

  public _bind(scope: Construct, context: StoreContext): BackendStoreConnection {
    const postgres = new Postgres(scope, 'postgres', { ...this.options, context });
    return { host: postgres.host, port: postgres.port, uriQuery: '', podSelector: postgres.selector, image: postgres.image };
  }
}

class ExternalDatabase extends BackendStore {
  private readonly connection: BackendStoreConnection;

  public constructor(options: ExternalDatabaseOptions) {
    super();
    const host = checkNonEmpty(options.host, 'BackendStore.external({ host })');
    if (!/^[A-Za-z0-9.:\-[\]]+$/.test(host)) {
      throw new ConfigError(`BackendStore.external({ host }) must be a host name or IP address; got ${JSON.stringify(host)}`);
    }
    const port = checkIntegerInRange(options.port ?? 5432, 'BackendStore.external({ port })', 1, 65535);
    if (options.sslMode !== undefined && !SSL_MODES.includes(options.sslMode)) {
      throw new ConfigError(`BackendStore.external({ sslMode }) must be one of ${SSL_MODES.join(', ')}; got ${JSON.stringify(options.sslMode)}`);
    }
    this.connection = { host, port, uriQuery: options.sslMode ? `?sslmode=${options.sslMode}` : '' };
  }

  public _bind(): BackendStoreConnection {
    return this.connection;
  }
}
