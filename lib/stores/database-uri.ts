/**
 * Percent-encodes a URI component, including the characters `encodeURIComponent` leaves alone
 * (`! ' ( ) *`), so any printable password survives SQLAlchemy's URL parser.
 */
function encode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** What a SQLAlchemy database URI is made of. */
export interface DatabaseUriParts {
  readonly user: string;
  readonly password: string;
  readonly database: string;
  readonly host: string;
  readonly port: number;
  /** Query string, e.g. `?sslmode=require`; empty for none. */
  readonly query: string;
}

/**
 * The drivers the MLflow image carries (`mlflow[db]`), named in the URI: SQLAlchemy 2.1 picks
 * psycopg 3 for a bare `postgresql://`, which the image does not have, and `mysql://` means mysqlclient.
 */
const SCHEMES: Record<string, string> = { postgresql: 'postgresql+psycopg2', mysql: 'mysql+pymysql' };

/** The SQLAlchemy URI of a backend store on `engine` (`postgresql` or `mysql`). */
export function databaseUri(engine: string, parts: DatabaseUriParts): string {
  const host = parts.host.includes(':') && !parts.host.startsWith('[') ? `[${parts.host}]` : parts.host;
  return `${SCHEMES[engine]}://${encode(parts.user)}:${encode(parts.password)}@${host}:${parts.port}/${encode(parts.database)}${parts.query}`;
}
