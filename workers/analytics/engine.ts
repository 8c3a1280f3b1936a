/**
 * The one place that touches the Analytics Engine binding (docs/analytics.md). Callers build data points
 * with the pure builders of shared/analytics/datapoints.ts and hand them here.
 *
 * `writeDataPoint` is fire-and-forget in the runtime (no await, no subrequest); a missing binding or a
 * throwing one (malformed point) only loses the point, never the request. Locally `wrangler dev` binds a
 * simulator that drops points; tests pass a recording stand-in as `env.ANALYTICS`.
 */
import type { DataPoint } from "../../shared/analytics/datapoints.ts";
import type { Env } from "../env.ts";

let lastWarning = 0;

export function writeDataPoint(env: Pick<Env, "ANALYTICS">, point: DataPoint): void {
  const dataset = env.ANALYTICS;
  if (!dataset) return;
  try {
    dataset.writeDataPoint(point);
  } catch (error) {
    // At most one line a minute per isolate: a bad layout would otherwise log on every request.
    const now = Date.now();
    if (now - lastWarning > 60_000) {
      lastWarning = now;
      console.warn(
        JSON.stringify({
          level: "warn",
          msg: "analytics engine data point dropped",
          kind: point.blobs[0],
          error: error instanceof Error ? error.message : String(error),
        }),
      );
    }
  }
}
