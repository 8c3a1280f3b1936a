// A tiny local HTTP server that stands in for notification providers in tests (an email API, a Web Push
// service): it records every request and answers as told — e.g. "fail the next 2 requests to /emails with
// 503, then accept". Nothing leaves the machine. Not a fake of PrepX: the code under test talks real HTTP
// to it through the same adapters it uses in production.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface StubRequest {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: Buffer;
  /** The status the stub answered. */
  status: number;
}

export interface ProviderStub {
  url: string;
  requests: StubRequest[];
  /** Requests whose path starts with `prefix`. */
  to(prefix: string): StubRequest[];
  /** The next `times` requests to paths starting with `prefix` answer `status` (then the default). */
  fail(prefix: string, times: number, status?: number): void;
  /** Every request to `prefix` answers `status` until `reset`. */
  failAlways(prefix: string, status?: number): void;
  reset(prefix: string): void;
  close(): Promise<void>;
}

export async function startProviderStub(
  answer: (req: StubRequest) => { status: number; body: unknown } = () => ({ status: 200, body: {} }),
): Promise<ProviderStub> {
  const requests: StubRequest[] = [];
  const failures = new Map<string, { left: number; status: number }>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "/";
      const record: StubRequest = {
        method: req.method ?? "GET",
        path,
        headers: req.headers,
        body: Buffer.concat(chunks),
        status: 0,
      };
      let reply = answer(record);
      for (const [prefix, f] of failures) {
        if (path.startsWith(prefix) && f.left > 0) {
          f.left--;
          reply = { status: f.status, body: { error: "injected failure" } };
          break;
        }
      }
      record.status = reply.status;
      requests.push(record);
      res.writeHead(reply.status, { "content-type": "application/json" });
      res.end(JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    to: (prefix) => requests.filter((r) => r.path.startsWith(prefix)),
    fail: (prefix, times, status = 503) => failures.set(prefix, { left: times, status }),
    failAlways: (prefix, status = 503) => failures.set(prefix, { left: Number.POSITIVE_INFINITY, status }),
    reset: (prefix) => failures.delete(prefix),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
