import { BackendStoreConnection } from './backend-store';
import { CredentialValues } from './credentials';

/**
 * Percent-encodes a URI component, including the characters `encodeURIComponent` leaves alone
 * (`! ' ( ) *`), so any printable password survives SQLAlchemy's URL parser.
 */
function encode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * The SQLAlchemy URI of the backend store. The driver is named: SQLAlchemy 2.1 picks psycopg 3 for a
 * bare `postgresql://`, which the MLflow image does not have.
 */
export function databaseUri(values: CredentialValues, connection: BackendStoreConnection): string {
  const host = connection.host.includes(':') && !connection.host.startsWith('[') ? `[${connection.host}]` : connection.host;
  return `postgresql+psycopg2://${encode(values.postgresUser)}:${encode(values.postgresPassword)}@${host}:${connection.port}/${encode(values.postgresDb)}${connection.uriQuery}`;
}
