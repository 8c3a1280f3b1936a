import { base64url, constantTimeEqual, fromBase64url, randomBytes, utf8 } from "./crypto.ts";

/**
 * PBKDF2-SHA256 iteration count: 100,000, the most Cloudflare's production runtime allows (it throws
 * "iteration counts above 100000 are not supported"). Open-source workerd — `wrangler dev` and the
 * Vitest pool — enforces no limit (workerd#1471), so `hashPassword` enforces the production ceiling
 * itself: a higher count must fail here, not after deploy. Every stored hash carries its own count,
 * so a future raise only affects new hashes.
 */
export const PBKDF2_ITERATIONS = 100_000;
const SALT_BYTES = 16;
const KEY_BITS = 256;
const SCHEME = "pbkdf2-sha256";

export const PASSWORD_MIN_LENGTH = 10;
export const PASSWORD_MAX_LENGTH = 128;

/**
 * The password rules, kept deliberately simple (NIST 800-63B leans on length, not composition):
 * 10 to 128 characters, and not made of a single character class (only lowercase letters,
 * only uppercase, only digits or only symbols). Returns the broken rule, or undefined.
 */
export function passwordProblem(password: string): string | undefined {
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH) return `must be at least ${PASSWORD_MIN_LENGTH} characters`;
  if (length > PASSWORD_MAX_LENGTH) return `must be at most ${PASSWORD_MAX_LENGTH} characters`;
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^a-zA-Z0-9]/].filter((re) => re.test(password)).length;
  if (classes < 2) return "must mix at least two of: lowercase, uppercase, digits, symbols";
  return undefined;
}

async function derive(password: string, salt: Uint8Array<ArrayBuffer>, iterations: number) {
  const key = await crypto.subtle.importKey("raw", utf8(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    key,
    KEY_BITS,
  );
  return new Uint8Array(bits);
}

/**
 * Hashes a password with a fresh random salt. The result is self-describing:
 * `pbkdf2-sha256$<iterations>$<salt b64url>$<hash b64url>`.
 *
 * @example
 * const stored = await hashPassword("correct horse 1");
 * await verifyPassword("correct horse 1", stored); // true
 */
export async function hashPassword(password: string, iterations = PBKDF2_ITERATIONS): Promise<string> {
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > PBKDF2_ITERATIONS) {
    throw new RangeError(`PBKDF2 iterations must be 1..${PBKDF2_ITERATIONS} (the Workers production limit)`);
  }
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, iterations);
  return `${SCHEME}$${iterations}$${base64url(salt)}$${base64url(hash)}`;
}

/** Checks a password against a stored hash in constant time. A malformed hash never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split("$");
  if (parts.length !== 4 || parts[0] !== SCHEME) return false;
  const iterations = Number(parts[1]);
  const salt = fromBase64url(parts[2] ?? "");
  const expected = fromBase64url(parts[3] ?? "");
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > PBKDF2_ITERATIONS) return false;
  if (!salt || !expected || expected.length !== KEY_BITS / 8) return false;
  const actual = await derive(password, salt, iterations);
  return constantTimeEqual(actual, expected);
}

/**
 * A well-formed hash of a random password, verified against when the email is unknown so that
 * "no such account" costs the same PBKDF2 work as "wrong password" (no timing oracle for emails).
 */
let decoyHash: string | undefined;
export async function decoyPasswordHash(): Promise<string> {
  // Kept as a plain string, not a shared promise: workerd dislikes promises that cross requests.
  decoyHash ??= await hashPassword(base64url(randomBytes(18)));
  return decoyHash;
}
