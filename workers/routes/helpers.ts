import type { z } from "@hono/zod-openapi";
import type { Outcome } from "../../durable-objects/user-session/outcome.ts";
import { findSymbol } from "../../shared/symbols.ts";
import { ApiError } from "../errors.ts";

/** An OpenAPI response whose body is `schema` as JSON. */
export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

/** A Durable Object's outcome as a response value, or the failure it carries as an ApiError. */
export function unwrap<T>(outcome: Outcome<T>): T {
  if (outcome.ok) return outcome.value;
  throw new ApiError(outcome.status, outcome.code, outcome.message);
}

/** The symbol itself when it is listed; 404 `symbol_not_found` otherwise. */
export function knownSymbol(symbol: string): string {
  if (!findSymbol(symbol)) throw new ApiError(404, "symbol_not_found", `symbol ${symbol} is not listed`);
  return symbol;
}
