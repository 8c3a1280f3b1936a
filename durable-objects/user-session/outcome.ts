/**
 * What a UserSession RPC returns: a value, or a failure the edge turns into an HTTP error as it is.
 * Failures are values, not exceptions, so their status and code survive the RPC boundary intact.
 */
export interface ApiFailure {
  ok: false;
  status: 400 | 403 | 404 | 409 | 422 | 429 | 503;
  code: string;
  message: string;
}

export type Outcome<T> = { ok: true; value: T } | ApiFailure;

export function fail(status: ApiFailure["status"], code: string, message: string): ApiFailure {
  return { ok: false, status, code, message };
}

export function ok<T>(value: T): Outcome<T> {
  return { ok: true, value };
}
