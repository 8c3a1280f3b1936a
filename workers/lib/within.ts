/** What {@link within} answers for a call that took longer than allowed. */
export const TIMED_OUT: unique symbol = Symbol("timed out");

/**
 * `call`'s result, or {@link TIMED_OUT} once `ms` have passed without one (the call itself goes on; a
 * caller that must not lose it hands it to `waitUntil`). A rejection of `call` within the time rejects.
 */
export async function within<T>(call: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), ms);
  });
  try {
    return await Promise.race([call, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
