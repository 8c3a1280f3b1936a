import type { AppBindings } from "../env.ts";

export const ROLES = ["trader", "admin"] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: unknown): value is Role {
  return value === "trader" || value === "admin";
}

/**
 * Who is calling. Set by `requireAuth` / `requireAdmin` / `requireSession` as `c.var.principal`.
 *
 * @example
 * router.openapi(route, (c) => {
 *   const { userId } = c.var.principal; // the owner every account check compares against
 * });
 */
export interface Principal {
  userId: string;
  role: Role;
  /** How the caller authenticated: a JWT access token, or an API key through the Alpaca headers. */
  via: "jwt" | "api_key";
  /** The API key id when `via === "api_key"`. */
  keyId?: string;
  /** The refresh-token family (login session) of the access token when `via === "jwt"`. */
  sessionId?: string;
}

/**
 * The Hono environment of a route behind an auth middleware: `c.var.principal` is set.
 * Route-level middleware (`createRoute({ middleware: [requireAuth] })`) carries this type into the
 * handler; behind `router.use(path, requireAuth)` read it with `principalOf(c)`.
 */
export type AuthBindings = {
  Bindings: AppBindings["Bindings"];
  Variables: AppBindings["Variables"] & { principal: Principal };
};
