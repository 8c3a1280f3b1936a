import { z } from "@hono/zod-openapi";
import type { Router } from "../openapi.ts";
import { API_KEY_ID_HEADER, API_SECRET_HEADER } from "./middleware.ts";
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, passwordProblem } from "./password.ts";

/**
 * OpenAPI pieces shared by every authenticated route: the security schemes and their
 * requirement, the error body, and the common error responses.
 */

export const SECURITY_SCHEMES = {
  bearerAuth: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
  apcaKeyId: { type: "apiKey", in: "header", name: API_KEY_ID_HEADER },
  apcaSecretKey: { type: "apiKey", in: "header", name: API_SECRET_HEADER },
} as const;

/** Registers the three schemes on the app's OpenAPI document (called once in app.ts). */
export function registerSecuritySchemes(app: Router): void {
  for (const [name, scheme] of Object.entries(SECURITY_SCHEMES)) {
    app.openAPIRegistry.registerComponent("securitySchemes", name, scheme);
  }
}

/** A bearer token, or both Alpaca headers. Put on every route behind `requireAuth`. */
export const AUTH_SECURITY: Record<string, string[]>[] = [
  { bearerAuth: [] },
  { apcaKeyId: [], apcaSecretKey: [] },
];
/** Bearer token only: routes behind `requireSession`. */
export const SESSION_SECURITY: Record<string, string[]>[] = [{ bearerAuth: [] }];

export const ErrorSchema = z
  .object({
    code: z.string().openapi({ example: "invalid_credentials" }),
    message: z.string().openapi({ example: "email or password is incorrect" }),
    request_id: z.string().optional(),
    details: z.unknown().optional(),
  })
  .openapi("Error");

const error = (description: string) => ({
  description,
  content: { "application/json": { schema: ErrorSchema } },
});

export const ERRORS = {
  400: error("Malformed request (`invalid_json`)"),
  401: error("Not signed in or credentials not valid"),
  403: error("Signed in but not allowed (`forbidden`, `session_required`)"),
  404: error("No such object, or not yours (`not_found`)"),
  409: error("Conflicts with existing state"),
  422: error("Request does not match its schema (`validation_failed`)"),
  429: error("Rate limited (`rate_limited`); see `Retry-After`"),
  503: error("A dependency is unavailable; retry"),
} as const;

/** The error responses of an authenticated route, plus any others named. */
export function errorResponses<K extends keyof typeof ERRORS>(...codes: K[]) {
  return Object.fromEntries(codes.map((k) => [k, ERRORS[k]])) as Pick<typeof ERRORS, K>;
}

export const EmailSchema = z
  .string()
  .trim()
  .toLowerCase()
  .max(254)
  .pipe(z.email())
  .openapi({ example: "trader@example.com" });

export const NewPasswordSchema = z
  .string()
  .superRefine((value, ctx) => {
    const problem = passwordProblem(value);
    if (problem) ctx.addIssue({ code: "custom", message: `password ${problem}` });
  })
  .openapi({
    description:
      `${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters, mixing at least two of: ` +
      "lowercase, uppercase, digits, symbols.",
    example: "correct-Horse-42",
    minLength: PASSWORD_MIN_LENGTH,
    maxLength: PASSWORD_MAX_LENGTH,
  });
