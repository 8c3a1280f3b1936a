/**
 * Serves the bundled worker straight from Miniflare (one workerd process), without `wrangler dev`'s proxy
 * worker in front. `wrangler dev` runs two Miniflare instances: a proxy worker that every request and
 * WebSocket frame crosses, and the user worker; on 2 cores that extra hop is a large part of the cost of
 * a small request. The bindings come from the same wrangler.toml through wrangler's own
 * `unstable_getMiniflareWorkerOptions`, so Durable Objects, queues and vars are those of `wrangler dev`.
 *
 * argv: <wrangler.toml of the bundle> <port> <persist dir> <vars JSON file> [inspector port]
 * Prints `MINIFLARE_READY <url>` once it answers; stops when stdin closes or on SIGTERM / SIGINT.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

const [configPath, port, persist, varsFile, inspectorPort] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string | undefined,
];
const vars = JSON.parse(readFileSync(varsFile, "utf8")) as Record<string, string>;
const { workerOptions } = unstable_getMiniflareWorkerOptions(configPath);
// The bundle is one ES module already; Miniflare 5 refuses v4 module rules.
delete (workerOptions as { modulesRules?: unknown }).modulesRules;
const main = path.join(path.dirname(configPath), "dist", "index.js");

const mf = new Miniflare(
  convertV4MiniflareOptions({
    host: "127.0.0.1",
    port: Number(port),
    log: new Log(LogLevel.WARN),
    // No network: a placeholder `request.cf` instead of fetching Cloudflare's.
    cf: false,
    // The V8 inspector of workerd, for CPU profiles of the worker and its objects (--cpu-profile).
    ...(inspectorPort ? { inspectorPort: Number(inspectorPort) } : {}),
    resourcePersistencePath: persist,
    workers: [
      {
        ...(workerOptions as Record<string, unknown>),
        name: "prepx-edge",
        modules: true,
        modulesRoot: path.dirname(main),
        scriptPath: main,
        bindings: { ...((workerOptions as { bindings?: Record<string, unknown> }).bindings ?? {}), ...vars },
      } as never,
    ],
  } as never),
);
const url = await mf.ready;
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await mf.dispose().catch(() => {});
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
process.stdin.on("end", () => void stop());
process.stdin.resume();
process.stdout.write(`MINIFLARE_READY ${url.origin}\n`);
