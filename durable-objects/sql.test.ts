import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { migrate, SqlError, sqlOf } from "./sql.ts";

/** A scratch object's storage (a UserSession nobody else uses). */
const scratch = () => env.USER_SESSION.get(env.USER_SESSION.idFromName(`sql-${crypto.randomUUID()}`));

describe("sql helper", () => {
  it("binds interpolated values as parameters and reads rows at once", async () => {
    await runInDurableObject(scratch(), (_o, state) => {
      const sql = sqlOf(state.storage);
      sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL) STRICT");
      const hostile = "x'); DROP TABLE t; --";
      expect(sql.run`INSERT INTO t (id, name) VALUES (${1}, ${hostile})`.rowsWritten).toBe(1);
      sql.run`INSERT INTO t (id, name) VALUES (${2}, ${"b"})`;
      expect(sql<{ name: string }>`SELECT name FROM t ORDER BY id`).toEqual([
        { name: hostile },
        { name: "b" },
      ]);
      expect(sql.one<{ id: number }>`SELECT id FROM t WHERE name = ${"b"}`).toEqual({ id: 2 });
      expect(sql.one`SELECT id FROM t WHERE name = ${"none"}`).toBeUndefined();
    });
  });

  it("wraps a failing statement in a SqlError that carries the query and its parameters", async () => {
    await runInDurableObject(scratch(), (_o, state) => {
      const sql = sqlOf(state.storage);
      let caught: unknown;
      try {
        sql`SELECT * FROM missing_table WHERE id = ${7}`;
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(SqlError);
      const error = caught as SqlError;
      expect(error.query).toBe("SELECT * FROM missing_table WHERE id = ?");
      expect(error.params).toEqual([7]);
      expect(error.message).toMatch(/missing_table/);
      expect(error.cause).toBeInstanceOf(Error);
    });
  });

  it("rolls a transaction back as a whole when any statement in it fails", async () => {
    await runInDurableObject(scratch(), (_o, state) => {
      const sql = sqlOf(state.storage);
      sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY) STRICT");
      expect(() =>
        sql.transaction(() => {
          sql.run`INSERT INTO t (id) VALUES (${1})`;
          sql.run`INSERT INTO t (id) VALUES (${1})`;
        }),
      ).toThrow(SqlError);
      expect(sql`SELECT id FROM t`).toEqual([]);
    });
  });

  it("tells its rollback listeners when a transaction rolls back, and only then", async () => {
    await runInDurableObject(scratch(), (_o, state) => {
      const sql = sqlOf(state.storage);
      sql.exec("CREATE TABLE t (id INTEGER PRIMARY KEY) STRICT");
      let rollbacks = 0;
      sql.onRollback(() => rollbacks++);
      sql.transaction(() => sql.run`INSERT INTO t (id) VALUES (${1})`);
      expect(rollbacks).toBe(0);
      expect(() => sql.transaction(() => sql.run`INSERT INTO t (id) VALUES (${1})`)).toThrow(SqlError);
      expect(rollbacks).toBe(1);
    });
  });

  it("migrates each component once, in order, and refuses a schema newer than the code", async () => {
    await runInDurableObject(scratch(), (_o, state) => {
      const sql = sqlOf(state.storage);
      const v1 = { version: 1, description: "a", up: "CREATE TABLE a (x INTEGER) STRICT" };
      const v2 = {
        version: 2,
        description: "b",
        up: "CREATE TABLE b (y INTEGER) STRICT; INSERT INTO b VALUES (1)",
      };
      expect(migrate(sql, "demo", [v1])).toEqual({ from: 0, to: 1 });
      expect(migrate(sql, "demo", [v1, v2])).toEqual({ from: 1, to: 2 });
      expect(migrate(sql, "demo", [v2, v1])).toEqual({ from: 2, to: 2 });
      expect(sql`SELECT y FROM b`).toEqual([{ y: 1 }]);
      expect(migrate(sql, "other", [v1 as never].slice(0, 0))).toEqual({ from: 0, to: 0 });
      expect(() => migrate(sql, "demo", [v1])).toThrow(/newer than this code/);
      expect(() => migrate(sql, "gaps", [v2])).toThrow(/without gaps/);
    });
  });

  it("leaves the previous version intact when a migration step fails", async () => {
    await runInDurableObject(scratch(), (_o, state) => {
      const sql = sqlOf(state.storage);
      const ok = { version: 1, description: "ok", up: "CREATE TABLE ok (x INTEGER) STRICT" };
      const broken = {
        version: 2,
        description: "broken",
        up: "CREATE TABLE half (x INTEGER); SELECT nope FROM",
      };
      migrate(sql, "demo", [ok]);
      expect(() => migrate(sql, "demo", [ok, broken])).toThrow(SqlError);
      expect(sql`SELECT version FROM _schema_versions WHERE component = ${"demo"}`).toEqual([{ version: 1 }]);
      expect(sql`SELECT name FROM sqlite_master WHERE name = ${"half"}`).toEqual([]);
    });
  });
});
