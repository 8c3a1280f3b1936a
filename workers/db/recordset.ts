import { type SQL, sql } from "drizzle-orm";

/**
 * Set-wise writes without per-row query building: the rows travel as ONE jsonb parameter and Postgres
 * turns them back into a relation (`jsonb_to_recordset`). The statement text is the same whatever the
 * number of rows, and the JavaScript side costs one `JSON.stringify` — drizzle's multi-row `VALUES`
 * builder spent several microseconds per value (entity checks, parameter typing), which made it the
 * largest single cost of the history consumer.
 *
 * Row keys are the column names; values are JSON: numbers (safe integers for bigint columns), strings
 * (uuid, numeric, ISO timestamps, dates), booleans, null, or objects for jsonb columns.
 */
export function recordset(rows: readonly object[], columns: Record<string, string>): SQL {
  const defs = Object.entries(columns)
    .map(([name, type]) => `"${name}" ${type}`)
    .join(", ");
  return sql`jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS r(${sql.raw(defs)})`;
}

/** The column list of a recordset, for `INSERT INTO t (cols) SELECT cols FROM …`. */
export function columnList(columns: Record<string, string>): SQL {
  return sql.raw(
    Object.keys(columns)
      .map((c) => `"${c}"`)
      .join(", "),
  );
}

/** The rows of `db.execute(…)`, whichever driver answered (node-postgres and Neon return `{ rows }`). */
export function rowsOf<R>(result: unknown): R[] {
  if (Array.isArray(result)) return result as R[];
  return ((result as { rows?: R[] } | null)?.rows ?? []) as R[];
}
