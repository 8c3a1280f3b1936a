// Ties the project's Env and main module to the runtime's `cloudflare:workers` / `cloudflare:test` types.
type ProjectEnv = import("./env.ts").Env;
type ProjectMainModule = typeof import("./index.ts");

declare namespace Cloudflare {
  interface Env extends ProjectEnv {}
  interface GlobalProps {
    mainModule: ProjectMainModule;
    durableNamespaces: "OrderBook" | "UserSession" | "MarketMaker" | "MarketDataHub";
  }
}
