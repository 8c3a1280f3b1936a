/**
 * A lean keep-alive HTTP client for the load generator: Node's own `http` module with one pooled agent,
 * JSON in and out, and the time of each exchange measured around the request (first byte written to last
 * byte read) with `process.hrtime`. `fetch` would work too, but it allocates a Request, a Response and a
 * stream per call, which on a 2-core machine shared with the server costs the server CPU.
 */
import http from "node:http";

export interface HttpReply {
  status: number;
  /** Parsed JSON body, `undefined` for an empty body, `{ raw }` for a body that is not JSON. */
  body: unknown;
  /** Milliseconds from sending the request to the end of the response. */
  ms: number;
  headers: http.IncomingHttpHeaders;
}

export interface HttpClientOptions {
  baseUrl: string;
  /** Keep-alive connections in the pool (default 128). */
  connections?: number;
  /** Per-request timeout in ms (default 30 s); a timeout is reported as status 0. */
  timeoutMs?: number;
}

/** Only the loopback interface may be load tested. */
export function assertLocalTarget(url: string): URL {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, "");
  if (!["127.0.0.1", "localhost", "::1"].includes(host) || (u.protocol !== "http:" && u.protocol !== "ws:")) {
    throw new Error(`refusing to load test ${url}: only http://127.0.0.1, http://localhost or http://[::1]`);
  }
  return u;
}

export class HttpClient {
  readonly baseUrl: string;
  private readonly agent: http.Agent;
  private readonly host: string;
  private readonly port: number;
  private readonly timeoutMs: number;

  constructor(opts: HttpClientOptions) {
    const u = assertLocalTarget(opts.baseUrl);
    this.baseUrl = u.origin;
    this.host = u.hostname.replace(/^\[|\]$/g, "");
    this.port = Number(u.port || 80);
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.agent = new http.Agent({
      keepAlive: true,
      maxSockets: opts.connections ?? 128,
      maxFreeSockets: opts.connections ?? 128,
      scheduling: "lifo",
    });
  }

  request(
    method: string,
    path: string,
    opts: { body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<HttpReply> {
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers: Record<string, string | number> = { ...opts.headers };
    if (payload !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = Buffer.byteLength(payload);
    }
    return new Promise((resolve) => {
      const started = process.hrtime.bigint();
      const elapsed = () => Number(process.hrtime.bigint() - started) / 1e6;
      let settled = false;
      const done = (reply: HttpReply) => {
        if (settled) return;
        settled = true;
        resolve(reply);
      };
      const req = http.request(
        { host: this.host, port: this.port, method, path, headers, agent: this.agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = chunks.length === 0 ? "" : Buffer.concat(chunks).toString("utf8");
            let body: unknown;
            if (text !== "") {
              try {
                body = JSON.parse(text);
              } catch {
                body = { raw: text.slice(0, 500) };
              }
            }
            done({ status: res.statusCode ?? 0, body, ms: elapsed(), headers: res.headers });
          });
          res.on("error", (err) => done(networkFailure(err, req.reusedSocket, elapsed())));
        },
      );
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error("timeout")));
      req.on("error", (err) => done(networkFailure(err, req.reusedSocket, elapsed())));
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * A request that got no HTTP answer, as status 0 with a `code` the report groups by: the socket error's
 * code (`ECONNRESET`, …) or `timeout`, marked `_reused` when the request went out on a kept-alive
 * socket (a server closing an idle connection just as a request is sent on it fails that way).
 */
export function networkFailure(err: Error, reusedSocket: boolean, ms: number): HttpReply {
  const errno = (err as NodeJS.ErrnoException).code;
  const code = typeof errno === "string" ? errno : err.message === "timeout" ? "timeout" : "network_error";
  return {
    status: 0,
    body: { code: reusedSocket ? `${code}_reused` : code, message: err.message },
    ms,
    headers: {},
  };
}
