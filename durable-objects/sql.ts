/**
 * A small tagged-template helper over a Durable Object's `ctx.storage.sql`.
 *
 * - Interpolated values are always bound as parameters (`?`), never spliced into the text.
 * - The cursor is read at once (`toArray()`), so no cursor outlives the call.
 * - A failure becomes a {@link SqlError} carrying the query text and its parameters.
 * - The query text of a template call site is built once and cached (keyed by the template's strings array,
 *   which the language guarantees to be the same object for every evaluation of one call site).
 *
 * @example
 * ```ts
 * const sql = sqlOf(ctx.storage);
 * migrate(sql, "order_book", MIGRATIONS);            // inside blockConcurrencyWhile
 * sql.run`INSERT INTO log (ts, body) VALUES (${now}, ${json})`;
 * const rows = sql<{ id: number }>`SELECT id FROM log WHERE ts > ${since}`;
 * const last = sql.one<{ id: number }>`SELECT max(id) AS id FROM log`;
 * sql.transaction(() => { ...several writes, all or nothing... });
 * ```
 */

/** A value SQLite can store. Booleans are not accepted: store 0 / 1 explicitly. */
export type SqlValue = string | number | null | ArrayBuffer;

/** One result row. */
export type SqlRow = Record<string, SqlValue>;

/** A failed statement, with the statement and its bound parameters for the log. */
export class SqlError extends Error {
  readonly query: string;
  readonly params: readonly SqlValue[];

  constructor(query: string, params: readonly SqlValue[], cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`${reason} (query: ${query.replace(/\s+/g, " ").trim()})`, { cause });
    this.name = "SqlError";
    this.query = query;
    this.params = params;
  }
}

export interface WriteResult {
  rowsWritten: number;
}

export interface Sql {
  /** Every row of a query. */
  <T extends SqlRow = SqlRow>(strings: TemplateStringsArray, ...values: SqlValue[]): T[];
  /** The first row of a query, or `undefined` when there is none. */
  one<T extends SqlRow = SqlRow>(strings: TemplateStringsArray, ...values: SqlValue[]): T | undefined;
  /** Run a statement for its effect; returns the number of rows written. */
  run(strings: TemplateStringsArray, ...values: SqlValue[]): WriteResult;
  /**
   * A query whose text is built at run time (e.g. a schema script of several statements). Parameters
   * are still bound; prefer the tagged forms whenever the text is fixed.
   */
  exec<T extends SqlRow = SqlRow>(query: string, ...params: SqlValue[]): T[];
  /** Run `fn` in one synchronous SQLite transaction: all its writes commit together, or none does. */
  transaction<T>(fn: () => T): T;
  /**
   * Call `forget` whenever a transaction rolls back, so a cache of what was written can drop what the
   * rollback undid (memory is not rolled back with the database).
   */
  onRollback(forget: () => void): void;
}

const queryCache = new WeakMap<TemplateStringsArray, string>();

function queryOf(strings: TemplateStringsArray): string {
  let text = queryCache.get(strings);
  if (text === undefined) {
    text = strings.join("?");
    queryCache.set(strings, text);
  }
  return text;
}

/** The storage surface this helper needs (a subset of `DurableObjectStorage`, easy to fake). */
export interface SqlHost {
  readonly sql: SqlStorage;
  transactionSync<T>(fn: () => T): T;
}

/** Wrap a Durable Object's storage in the tagged-template helper. */
export function sqlOf(storage: SqlHost): Sql {
  const db = storage.sql;
  const cursor = (query: string, params: SqlValue[]) => {
    try {
      return db.exec<SqlRow>(query, ...params);
    } catch (err) {
      throw new SqlError(query, params, err);
    }
  };
  const rows = <T extends SqlRow>(query: string, params: SqlValue[]): T[] => {
    try {
      return db.exec<T>(query, ...params).toArray();
    } catch (err) {
      throw new SqlError(query, params, err);
    }
  };
  const sql = (<T extends SqlRow>(strings: TemplateStringsArray, ...values: SqlValue[]): T[] =>
    rows<T>(queryOf(strings), values)) as Sql;
  sql.one = <T extends SqlRow>(strings: TemplateStringsArray, ...values: SqlValue[]): T | undefined => {
    const query = queryOf(strings);
    try {
      const next = db.exec<T>(query, ...values).next();
      return next.done ? undefined : next.value;
    } catch (err) {
      throw new SqlError(query, values, err);
    }
  };
  sql.run = (strings: TemplateStringsArray, ...values: SqlValue[]): WriteResult => {
    const c = cursor(queryOf(strings), values);
    // Reading the cursor to its end runs every statement; rowsWritten is final afterwards.
    for (const _row of c) {
      // drain
    }
    return { rowsWritten: c.rowsWritten };
  };
  sql.exec = <T extends SqlRow>(query: string, ...params: SqlValue[]): T[] => rows<T>(query, params);
  const rollbackHooks: (() => void)[] = [];
  sql.transaction = <T>(fn: () => T): T => {
    try {
      return storage.transactionSync(fn);
    } catch (err) {
      for (const forget of rollbackHooks) forget();
      throw err;
    }
  };
  sql.onRollback = (forget) => {
    rollbackHooks.push(forget);
  };
  return sql;
}

/** One step of a component's schema. Versions start at 1 and increase by 1. */
export interface Migration {
  version: number;
  /** What the step does, for humans. */
  description: string;
  /** SQL script; may hold several statements separated by `;`. */
  up: string;
}

export interface MigrationResult {
  from: number;
  to: number;
}

/**
 * Bring one component's schema up to date. The version lives in a row of `_schema_versions` keyed by
 * `component`, so several components (e.g. the account logic and the book-event inbox of a UserSession)
 * can version their tables independently in one database. Each step runs in its own transaction together
 * with the version bump, so a failure leaves the previous version intact.
 *
 * Call it once per wake inside `blockConcurrencyWhile`: when the schema is current it costs one small read.
 */
export function migrate(sql: Sql, component: string, migrations: readonly Migration[]): MigrationResult {
  sql.exec(
    "CREATE TABLE IF NOT EXISTS _schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL, updated_at INTEGER NOT NULL)",
  );
  const row = sql.one<{
    version: number;
  }>`SELECT version FROM _schema_versions WHERE component = ${component}`;
  const from = row?.version ?? 0;
  const steps = [...migrations].sort((a, b) => a.version - b.version);
  steps.forEach((step, i) => {
    if (step.version !== i + 1) {
      throw new Error(`${component}: migrations must be numbered 1..n without gaps (found ${step.version})`);
    }
  });
  const latest = steps.length;
  if (from > latest) {
    throw new Error(`${component}: stored schema version ${from} is newer than this code (${latest})`);
  }
  for (const step of steps) {
    if (step.version <= from) continue;
    sql.transaction(() => {
      sql.exec(step.up);
      sql.run`INSERT INTO _schema_versions (component, version, updated_at) VALUES (${component}, ${step.version}, ${Date.now()})
              ON CONFLICT (component) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at`;
    });
  }
  return { from, to: latest };
}
