import { Construct } from 'constructs';
import { CredentialValues } from '../credentials/credential-values';
import { StackContext } from '../kit/context';
import { ConfigError } from '../kit/errors';
import { PartLabels } from '../kit/labels';
import { checkIntegerInRange, checkNonEmpty } from '../kit/validate';
import { databaseUri } from './database-uri';
import { Postgres, PostgresOptions } from './postgres';

/** How the stack reaches its database; what every backend store provides. */
export interface BackendStoreConnection {
  /** Host name or address of the database server. */
  readonly host: string;
  /** TCP port. */
  readonly port: number;
  /** The database server software. */
  readonly engine: DatabaseEngine;
  /** Store settings that the URI carries, so that an existing Secret's URI would silently override them (for errors). */
  readonly uriSettings: string[];
  /** The SQLAlchemy URI for these credentials. */
  databaseUri(values: CredentialValues): string;
  /** Labels of the in-cluster database pods, when the database runs in the cluster. */
  readonly labels?: PartLabels;
  /** The in-cluster server's image, whose `pg_dump` matches it; undefined for an external database. */
  readonly image?: string;
}

/** The database server software of an external backend store. */
export enum DatabaseEngine {
  /** PostgreSQL (`postgresql+psycopg2://`). */
  POSTGRESQL = 'postgresql',
  /** MySQL or MariaDB (`mysql+pymysql://`). */
  MYSQL = 'mysql',
}

/** Options for a database that runs outside this stack. */
export interface ExternalDatabaseOptions {
  /**
   * The database server software.
   * @default DatabaseEngine.POSTGRESQL
   */
  readonly engine?: DatabaseEngine;
  /** Host name or address of the database server. */
  readonly host: string;
  /**
   * TCP port.
   * @default - 5432 for PostgreSQL, 3306 for MySQL
   */
  readonly port?: number;
  /**
   * TLS. PostgreSQL: libpq's `sslmode` (`disable`, `allow`, `prefer`, `require`, `verify-ca`,
   * `verify-full`). MySQL: `disabled`, `required` (encrypted, certificate not checked) or
   * `verify-identity` (certificate checked against the image's system CAs, host name included).
   * With `Credentials.fromSecretName` the Secret's URI carries it instead, so it cannot be set here.
   * @default - PostgreSQL: libpq's default (`prefer`); MySQL: `disabled`
   */
  readonly sslMode?: string;
}

/** What each engine accepts as `sslMode`, and the URI query each value becomes. */
const TLS_QUERIES: Record<DatabaseEngine, Record<string, string>> = {
  [DatabaseEngine.POSTGRESQL]: Object.fromEntries(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'].map((m) => [m, `?sslmode=${m}`])),
  [DatabaseEngine.MYSQL]: {
    'disabled': '',
    // PyMySQL turns TLS on for any ssl_* option; without a CA it encrypts without checking the certificate.
    'required': '?ssl_check_hostname=false',
    'verify-identity': '?ssl_ca=/etc/ssl/certs/ca-certificates.crt',
  },
};
const DEFAULT_PORTS: Record<DatabaseEngine, number> = { [DatabaseEngine.POSTGRESQL]: 5432, [DatabaseEngine.MYSQL]: 3306 };

/** Where MLflow keeps run metadata and the model registry. Create with a static factory. */
export abstract class BackendStore {
  /** PostgreSQL inside the cluster: a StatefulSet with a PersistentVolumeClaim that outlives uninstall. */
  public static postgres(options: PostgresOptions = {}): BackendStore {
    return new InClusterPostgres(options);
  }

  /**
   * A PostgreSQL, MySQL or MariaDB database you already run (a managed service, a Service in the
   * cluster); user, password and database come from the credentials.
   */
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
    const engine = DatabaseEngine.POSTGRESQL;
    return {
      host,
      port,
      engine,
      uriSettings: [],
      labels: postgres.labels,
      image: postgres.image,
      databaseUri: (v) => databaseUri(engine, { user: v.postgresUser, password: v.postgresPassword, database: v.postgresDb, host, port, query: '' }),
    };
  }
}

class ExternalDatabase extends BackendStore {
  private readonly engine: DatabaseEngine;
  private readonly host: string;
  private readonly port: number;
  private readonly query: string;
  private readonly uriSettings: string[];

  public constructor(options: ExternalDatabaseOptions) {
    super();
    this.engine = options.engine ?? DatabaseEngine.POSTGRESQL;
    if (!Object.values(DatabaseEngine).includes(this.engine)) {
      throw new ConfigError(`BackendStore.external({ engine }) must be one of ${Object.values(DatabaseEngine).join(', ')}; got ${JSON.stringify(options.engine)}`);
    }
    this.host = checkNonEmpty(options.host, 'BackendStore.external({ host })');
    if (!/^[A-Za-z0-9.:\-[\]]+$/.test(this.host)) {
      throw new ConfigError(`BackendStore.external({ host }) must be a host name or IP address; got ${JSON.stringify(this.host)}`);
    }
    this.port = checkIntegerInRange(options.port ?? DEFAULT_PORTS[this.engine], 'BackendStore.external({ port })', 1, 65535);
    const queries = TLS_QUERIES[this.engine];
    if (options.sslMode !== undefined && !(options.sslMode in queries)) {
      throw new ConfigError(`BackendStore.external({ sslMode }) for ${this.engine} must be one of ${Object.keys(queries).join(', ')}; got ${JSON.stringify(options.sslMode)}`);
    }
    this.query = options.sslMode === undefined ? '' : queries[options.sslMode];
    this.uriSettings = options.sslMode === undefined ? [] : ['sslMode'];
  }

  public _bind(): BackendStoreConnection {
    const { engine, host, port, query, uriSettings } = this;
    return {
      host,
      port,
      engine,
      uriSettings,
      databaseUri: (v) => databaseUri(engine, { user: v.postgresUser, password: v.postgresPassword, database: v.postgresDb, host, port, query }),
    };
  }
}
