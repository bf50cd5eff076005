import { Construct } from 'constructs';
import { CredentialValues } from '../credentials/credential-values';
import { defaultImage, StackContext } from '../kit/context';
import { ConfigError } from '../kit/errors';
import { DefaultImages } from '../kit/images';
import { checkInteger } from '../kit/settings';
import { checkNonEmpty } from '../kit/validate';
import { DatabaseDump } from './database-dump';
import { databaseUri } from './database-uri';
import { InClusterPart } from './in-cluster';
import { pgDump } from './pg-dump';
import { Postgres, PostgresOptions } from './postgres';

/** Where the options of an external database are set (`mlflow.yaml` and the props alike). */
const KEY = 'backendStore.external';

/** What a backend store tells the rest of the stack; nothing outside the store asks which one it is. */
export interface BackendStoreConnection {
  /** Host name or address of the database server. */
  readonly host: string;
  /** TCP port. */
  readonly port: number;
  /** What the summary line calls it: `PostgreSQL in the cluster`, `MySQL at db:3306`. */
  readonly displayName: string;
  /** Store settings that the URI carries, so that an existing Secret's URI would silently override them (for errors). */
  readonly uriSettings: string[];
  /** The SQLAlchemy URI for these credentials. */
  databaseUri(values: CredentialValues): string;
  /** The database's pods, when it runs in the stack (its data is then the stack's to back up). */
  readonly inCluster?: InClusterPart;
  /** How the backup Job dumps it; undefined when the stack cannot, and a backup is then refused. */
  readonly dump?: DatabaseDump;
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
   * @minimum 1
   * @maximum 65535
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
const ENGINE_NAMES: Record<DatabaseEngine, string> = { [DatabaseEngine.POSTGRESQL]: 'PostgreSQL', [DatabaseEngine.MYSQL]: 'MySQL' };

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
    return {
      host,
      port,
      displayName: 'PostgreSQL in the cluster',
      uriSettings: [],
      inCluster: { labels: postgres.labels, name: 'postgres', statefulSet: postgres.statefulSet },
      dump: pgDump(host, port, postgres.image),
      databaseUri: (v) => databaseUri(DatabaseEngine.POSTGRESQL, { user: v.postgresUser, password: v.postgresPassword, database: v.postgresDb, host, port, query: '' }),
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
      throw new ConfigError(`${KEY}.engine must be one of ${Object.values(DatabaseEngine).join(', ')}; got ${JSON.stringify(options.engine)}`, `${KEY}.engine`);
    }
    this.host = checkNonEmpty(options.host, `${KEY}.host`);
    if (!/^[A-Za-z0-9.:\-[\]]+$/.test(this.host)) {
      throw new ConfigError(`${KEY}.host must be a host name or IP address; got ${JSON.stringify(this.host)}`, `${KEY}.host`);
    }
    this.port = checkInteger(`${KEY}.port`, options.port ?? DEFAULT_PORTS[this.engine]);
    const queries = TLS_QUERIES[this.engine];
    if (options.sslMode !== undefined && !(options.sslMode in queries)) {
      throw new ConfigError(`${KEY}.sslMode for ${this.engine} must be one of ${Object.keys(queries).join(', ')}; got ${JSON.stringify(options.sslMode)}`, `${KEY}.sslMode`);
    }
    this.query = options.sslMode === undefined ? '' : queries[options.sslMode];
    this.uriSettings = options.sslMode === undefined ? [] : ['sslMode'];
  }

  public _bind(_scope: Construct, context: StackContext): BackendStoreConnection {
    const { engine, host, port, query, uriSettings } = this;
    return {
      host,
      port,
      displayName: `${ENGINE_NAMES[engine]} at ${host}:${port}`,
      uriSettings,
      // The PostgreSQL image's pg_dump reaches any PostgreSQL; nothing here dumps MySQL or MariaDB.
      dump: engine === DatabaseEngine.POSTGRESQL ? pgDump(host, port, defaultImage(context, DefaultImages.POSTGRES)) : undefined,
      databaseUri: (v) => databaseUri(engine, { user: v.postgresUser, password: v.postgresPassword, database: v.postgresDb, host, port, query }),
    };
  }
}
