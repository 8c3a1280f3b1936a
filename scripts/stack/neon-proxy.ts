import http from "node:http";
import net from "node:net";
import { type RawData, type WebSocket, WebSocketServer } from "ws";
import {
  isDatabaseError,
  type PgField,
  type PgPool,
  type PgQueryable,
  type PgQueryConfig,
  type PgResult,
  Pool,
} from "./pg.ts";
import { type Logger, listen, stackLog } from "./util.ts";

/**
 * The local stand-in for Neon's edge, so `@neondatabase/serverless` talks to a plain PostgreSQL:
 *
 * - `GET /v1?address=host:port` (WebSocket upgrade): a WebSocket-to-TCP pipe, as Neon's wsproxy. The
 *   driver's `Pool` / `Client` speak the Postgres wire protocol through it (`neonConfig.wsProxy`).
 * - `POST /sql`: Neon's SQL-over-HTTP protocol, used by `neon()` (`neonConfig.fetchEndpoint`):
 *   body `{query, params}` or `{queries: [...]}` (one transaction), headers `Neon-Connection-String`,
 *   `Neon-Raw-Text-Output`, `Neon-Array-Mode`, `Neon-Batch-Isolation-Level`, `Neon-Batch-Read-Only`,
 *   `Neon-Batch-Deferrable`; reply `{command, fields, rowCount, rows, rowAsArray}` (or `{results: [...]}`),
 *   errors HTTP 400 `{message, code, detail, …}` like Neon.
 *
 * Only Postgres servers on this machine can be reached (`allowedHosts`). Workers point the driver here
 * with NEON_LOCAL_PROXY=host:port (see workers/lib/db.ts).
 */
export interface NeonProxyOptions {
  host?: string;
  /** Default 54330. */
  port?: number;
  /** Hosts a client may ask to reach; default loopback only. */
  allowedHosts?: string[];
  log?: Logger;
}

export interface RunningNeonProxy {
  host: string;
  port: number;
  /** `http://host:port` */
  url: string;
  /** `host:port`, the value of NEON_LOCAL_PROXY. */
  address: string;
  stop(): Promise<void>;
}

const DEFAULT_ALLOWED = ["127.0.0.1", "localhost", "::1", "[::1]"];

/** Every value as the text Postgres sent (what Neon does with `Neon-Raw-Text-Output: true`). */
const RAW_TEXT_TYPES = { getTypeParser: () => (value: string) => value };

const ISOLATION_LEVELS: Record<string, string> = {
  ReadUncommitted: "READ UNCOMMITTED",
  ReadCommitted: "READ COMMITTED",
  RepeatableRead: "REPEATABLE READ",
  Serializable: "SERIALIZABLE",
};

/** The fields of a Postgres error Neon returns next to `message` (what the driver copies onto its error). */
const ERROR_FIELDS = [
  "severity",
  "code",
  "detail",
  "hint",
  "position",
  "internalPosition",
  "internalQuery",
  "where",
  "schema",
  "table",
  "column",
  "dataType",
  "constraint",
  "file",
  "line",
  "routine",
] as const;

class ProxyError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** Parses `host:port` / `[v6]:port`. */
export function parseAddress(address: string | null): { host: string; port: number } | undefined {
  if (!address) return undefined;
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(address);
  if (!match?.[1] || !match[2]) return undefined;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: match[1], port };
}

function toBuffer(data: RawData): Buffer {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  return data;
}

interface SqlQuery {
  query: string;
  params?: unknown[];
}

function formatResult(result: PgResult<unknown[]>, arrayMode: boolean) {
  const fields = result.fields.map((f: PgField) => ({
    name: f.name,
    tableID: f.tableID,
    columnID: f.columnID,
    dataTypeID: f.dataTypeID,
    dataTypeSize: f.dataTypeSize,
    dataTypeModifier: f.dataTypeModifier,
    format: f.format,
  }));
  const rows = arrayMode
    ? result.rows
    : result.rows.map((row) => Object.fromEntries(fields.map((f, i) => [f.name, row[i]])));
  return { command: result.command, fields, rowCount: result.rowCount, rows, rowAsArray: arrayMode };
}

function toSqlQuery(value: unknown): SqlQuery {
  const q = value as SqlQuery | null;
  if (!q || typeof q.query !== "string") throw new ProxyError(400, "request body must be {query, params}");
  if (q.params !== undefined && !Array.isArray(q.params))
    throw new ProxyError(400, "params must be an array");
  return q;
}

export async function startNeonProxy(opts: NeonProxyOptions = {}): Promise<RunningNeonProxy> {
  const log = opts.log ?? stackLog;
  const host = opts.host ?? "127.0.0.1";
  const allowed = new Set((opts.allowedHosts ?? DEFAULT_ALLOWED).map((h) => h.toLowerCase()));
  const pools = new Map<string, PgPool>();
  const tunnels = new Set<{ ws: WebSocket; tcp: net.Socket }>();
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

  const tcpHost = (h: string) => (h === "localhost" ? "127.0.0.1" : h.replace(/^\[(.*)\]$/, "$1"));

  function pipe(ws: WebSocket, target: { host: string; port: number }): void {
    const tcp = net.connect({ host: tcpHost(target.host), port: target.port });
    tcp.setNoDelay(true);
    const tunnel = { ws, tcp };
    tunnels.add(tunnel);
    let inFlight = 0;
    ws.on("message", (data) => tcp.write(toBuffer(data)));
    tcp.on("data", (chunk) => {
      // Backpressure: stop reading from Postgres while the browser/worker side lags behind.
      inFlight += chunk.length;
      if (inFlight > 4 * 1024 * 1024) tcp.pause();
      ws.send(chunk, { binary: true }, () => {
        inFlight -= chunk.length;
        if (inFlight < 1024 * 1024 && tcp.isPaused()) tcp.resume();
      });
    });
    const close = () => {
      tunnels.delete(tunnel);
      tcp.destroy();
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close();
    };
    tcp.on("error", close);
    tcp.on("close", close);
    ws.on("close", close);
    ws.on("error", close);
  }

  function poolFor(connectionString: string | undefined): PgPool {
    if (!connectionString) throw new ProxyError(400, "missing Neon-Connection-String header");
    let url: URL;
    try {
      url = new URL(connectionString);
    } catch {
      throw new ProxyError(400, "Neon-Connection-String is not a valid URL");
    }
    if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
      throw new ProxyError(400, "Neon-Connection-String must be a postgres:// URL");
    }
    if (!allowed.has(url.hostname.toLowerCase())) {
      throw new ProxyError(400, `host ${url.hostname} is not allowed by the local Neon proxy`);
    }
    // Neon terminates TLS itself; the local server speaks plain TCP.
    for (const param of ["sslmode", "channel_binding", "sslrootcert"]) url.searchParams.delete(param);
    if (url.hostname.toLowerCase() === "localhost") url.hostname = "127.0.0.1"; // Node would try ::1 first
    const key = url.toString();
    let pool = pools.get(key);
    if (!pool) {
      pool = new Pool({ connectionString: key, max: 10, idleTimeoutMillis: 30_000, allowExitOnIdle: true });
      pool.on("error", () => {}); // an idle client lost its server: the pool replaces it
      pools.set(key, pool);
    }
    return pool;
  }

  async function runSql(db: PgQueryable, q: SqlQuery, rawText: boolean, arrayMode: boolean) {
    const config: PgQueryConfig = {
      text: q.query,
      values: q.params ?? [],
      rowMode: "array",
      // Like Neon: always the extended protocol, so several statements in one query are an error.
      queryMode: "extended",
      ...(rawText ? { types: RAW_TEXT_TYPES } : {}),
    };
    return formatResult(await db.query<unknown[]>(config), arrayMode);
  }

  async function handleSql(req: http.IncomingMessage, body: string): Promise<unknown> {
    const header = (name: string) => {
      const v = req.headers[name.toLowerCase()];
      return Array.isArray(v) ? v[0] : v;
    };
    const pool = poolFor(header("Neon-Connection-String"));
    const rawText = header("Neon-Raw-Text-Output") === "true";
    const arrayMode = header("Neon-Array-Mode") === "true";
    let payload: unknown;
    try {
      payload = JSON.parse(body);
    } catch {
      throw new ProxyError(400, "request body is not valid JSON");
    }
    const batch = (payload as { queries?: unknown } | null)?.queries;
    if (batch === undefined) return runSql(pool, toSqlQuery(payload), rawText, arrayMode);
    if (!Array.isArray(batch)) throw new ProxyError(400, "queries must be an array");
    const queries = batch.map(toSqlQuery);

    let begin = "BEGIN";
    const isolation = header("Neon-Batch-Isolation-Level");
    if (isolation) {
      const level = ISOLATION_LEVELS[isolation];
      if (!level) throw new ProxyError(400, `unknown Neon-Batch-Isolation-Level: ${isolation}`);
      begin += ` ISOLATION LEVEL ${level}`;
    }
    if (header("Neon-Batch-Read-Only") === "true") begin += " READ ONLY";
    if (header("Neon-Batch-Deferrable") === "true") begin += " DEFERRABLE";

    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      await client.query(begin);
      const results = [];
      try {
        for (const q of queries) results.push(await runSql(client, q, rawText, arrayMode));
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK").catch((e: Error) => {
          broken = e;
        });
        throw err;
      }
      return { results };
    } finally {
      client.release(broken);
    }
  }

  const server = http.createServer((req, res) => {
    const send = (status: number, json: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(json));
    };
    const path = new URL(req.url ?? "/", "http://proxy").pathname;
    if (req.method === "GET" && (path === "/" || path === "/health")) return send(200, { ok: true });
    if (path !== "/sql") return send(404, { message: `not found: ${path}` });
    if (req.method !== "POST") return send(405, { message: "use POST" });
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      handleSql(req, Buffer.concat(chunks).toString("utf8")).then(
        (result) => send(200, result),
        (err: unknown) => {
          if (isDatabaseError(err)) {
            const body: Record<string, unknown> = { message: err.message };
            for (const field of ERROR_FIELDS) if (err[field] !== undefined) body[field] = err[field];
            return send(400, body);
          }
          if (err instanceof ProxyError) return send(err.status, { message: err.message });
          return send(502, { message: `local Neon proxy: ${(err as Error).message}` });
        },
      );
    });
  });

  server.on("upgrade", (req, socket, head) => {
    const url = new URL(req.url ?? "/", "http://proxy");
    const target = parseAddress(url.searchParams.get("address"));
    const refuse = (status: string) => {
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (!["/", "/v1", "/v2"].includes(url.pathname)) return refuse("404 Not Found");
    if (!target) return refuse("400 Bad Request");
    if (!allowed.has(target.host.toLowerCase())) return refuse("403 Forbidden");
    wss.handleUpgrade(req, socket, head, (ws) => pipe(ws, target));
  });

  const port = await listen(server, opts.port ?? 54330, host, "neon proxy");
  log(`neon proxy ready on http://${host}:${port} (WebSocket /v1, SQL over HTTP /sql)`);

  return {
    host,
    port,
    url: `http://${host}:${port}`,
    address: `${host}:${port}`,
    async stop() {
      for (const { ws, tcp } of tunnels) {
        ws.terminate();
        tcp.destroy();
      }
      tunnels.clear();
      wss.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await Promise.all([...pools.values()].map((p) => p.end().catch(() => {})));
      pools.clear();
    },
  };
}
