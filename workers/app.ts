import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { secureHeaders } from "hono/secure-headers";
import { apiCallAnalytics } from "./analytics/api-calls.ts";
import { requireAdmin } from "./auth/middleware.ts";
import { registerSecuritySchemes } from "./auth/openapi.ts";
import { ApiError, handleError, notFound } from "./errors.ts";
import { requestContext } from "./middleware/request-context.ts";
import { createRouter, OPENAPI_INFO, renderReference } from "./openapi.ts";
import { admin } from "./routes/admin.ts";
import { adminHistory } from "./routes/admin-history.ts";
import { adminMarket } from "./routes/admin-market.ts";
import { adminTrading } from "./routes/admin-trading.ts";
import { adminDashboard, analyticsRouter } from "./routes/analytics.ts";
import { apiKeysRouter } from "./routes/api-keys.ts";
import { auth } from "./routes/auth.ts";
import { devOutbox } from "./routes/dev-outbox.ts";
import { health } from "./routes/health.ts";
import { marketData } from "./routes/market-data.ts";
import { marketDataApi, marketDataStream } from "./routes/market-data-api.ts";
import { me } from "./routes/me.ts";
import { notificationsRouter } from "./routes/notifications.ts";
import { stream } from "./routes/stream.ts";
import { documentStreams } from "./routes/stream-docs.ts";
import { trading } from "./routes/trading.ts";

/** Largest request body the API accepts; orders and auth payloads are tiny. */
export const MAX_BODY_BYTES = 64 * 1024;

export function buildApp() {
  const app = createRouter();
  app.use("*", requestContext);
  // Every call becomes an Analytics Engine data point and a latency count (docs/analytics.md).
  app.use("*", apiCallAnalytics);
  app.use("*", secureHeaders());
  app.use("*", (c, next) =>
    cors({
      origin: (origin) => ((c.env.CORS_ORIGINS ?? "").split(",").includes(origin) ? origin : null),
      allowHeaders: [
        "Authorization",
        "Content-Type",
        "X-Request-Id",
        "APCA-API-KEY-ID",
        "APCA-API-SECRET-KEY",
      ],
      exposeHeaders: [
        "X-Request-Id",
        "Retry-After",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
      ],
      maxAge: 600,
    })(c, next),
  );
  app.use(
    "*",
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new ApiError(413, "payload_too_large", `request body exceeds ${MAX_BODY_BYTES} bytes`);
      },
    }),
  );
  app.route("/", health);
  // The dashboard page holds no data and signs in itself; its figures (/admin/analytics) need an admin.
  app.route("/", adminDashboard);
  // Every /admin/* route requires an admin, whichever module defines it.
  app.use("/admin/*", requireAdmin);
  app.route("/", auth);
  app.route("/", me);
  app.route("/", apiKeysRouter);
  app.route("/", admin);
  app.route("/", adminTrading);
  app.route("/", adminHistory);
  app.route("/", analyticsRouter);
  app.route("/", marketData);
  app.route("/", adminMarket);
  app.route("/", marketDataApi);
  app.route("/", marketDataStream);
  app.route("/", trading);
  app.route("/", notificationsRouter);
  app.route("/", devOutbox);
  app.route("/", stream);

  registerSecuritySchemes(app);
  documentStreams(app);
  app.doc31("/openapi.json", OPENAPI_INFO);
  app.get("/docs", (c) => c.html(renderReference(app.getOpenAPI31Document(OPENAPI_INFO))));
  app.notFound(notFound);
  app.onError(handleError);
  return app;
}
