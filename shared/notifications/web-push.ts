/**
 * Web Push with WebCrypto only: message encryption (RFC 8291, `aes128gcm` content coding of
 * RFC 8188) and VAPID (RFC 8292, an ES256 JWT signed with the application server's P-256 key).
 *
 * Standard WebCrypto (`crypto.subtle`), which workerd and Node both provide; no Workers or Node API.
 * Unit-tested against the test vector of RFC 8291 Appendix A (shared/notifications/web-push.test.ts).
 *
 * @example
 * const body = await encryptWebPush(new TextEncoder().encode(json), { p256dh, auth });
 * const authorization = await vapidAuthorization(endpoint, vapidKeys, "mailto:ops@example.com", Date.now());
 * await fetch(endpoint, { method: "POST", body, headers: { authorization, "content-encoding": "aes128gcm", ttl: "86400" } });
 */

const encoder = new TextEncoder();

export function base64UrlEncode(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function base64UrlDecode(text: string): Uint8Array {
  const normal = text.replace(/-/g, "+").replace(/_/g, "/").replace(/\s/g, "");
  const padded = normal + "=".repeat((4 - (normal.length % 4)) % 4);
  const binary = atob(padded);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const bytes = (b: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(b);

async function hmac(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey("raw", bytes(key), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, bytes(data)));
}

/** HKDF-SHA-256 (RFC 5869) with one expand block, which is all RFC 8291 needs (≤ 32 bytes). */
async function hkdf(
  salt: Uint8Array,
  ikm: Uint8Array,
  info: Uint8Array,
  length: number,
): Promise<Uint8Array> {
  const prk = await hmac(salt, ikm);
  return (await hmac(prk, concat(info, new Uint8Array([1])))).slice(0, length);
}

/** An uncompressed P-256 point (65 bytes, 0x04 ‖ x ‖ y) as the x / y of a JWK. */
function pointToJwk(point: Uint8Array): { x: string; y: string } {
  if (point.length !== 65 || point[0] !== 4)
    throw new WebPushError("a P-256 public key must be 65 bytes, 0x04 first");
  return { x: base64UrlEncode(point.slice(1, 33)), y: base64UrlEncode(point.slice(33, 65)) };
}

/** ECDH parameters (a variable, not a literal: workers-types spell the `public` member `$public`). */
function ecdh(publicKey: CryptoKey) {
  const params = { name: "ECDH", public: publicKey };
  return params;
}

export class WebPushError extends Error {
  override name = "WebPushError";
}

export interface PushSubscriptionKeys {
  /** The user agent's P-256 public key, base64url (65 bytes uncompressed). */
  p256dh: string;
  /** The 16-byte authentication secret, base64url. */
  auth: string;
}

export interface EncryptOptions {
  /** Fixed salt (16 bytes); random by default. Tests only. */
  salt?: Uint8Array;
  /** Fixed application-server ECDH key pair (raw public, raw private `d`); a fresh one by default. Tests only. */
  serverKeys?: { publicKey: Uint8Array; privateKey: Uint8Array };
  /** Record size of the single record (RFC 8188 `rs`, default 4096). */
  recordSize?: number;
}

/** Push services accept at least 4096 bytes of body; a single record keeps things simple. */
export const MAX_PLAINTEXT_BYTES = 4096 - 16 - 1 - 86;

/**
 * Encrypts `plaintext` for one push subscription: the complete HTTP body (RFC 8188 header with salt,
 * record size and the server's public key, then one AES-128-GCM record padded with the 0x02 delimiter).
 */
export async function encryptWebPush(
  plaintext: Uint8Array,
  subscription: PushSubscriptionKeys,
  options: EncryptOptions = {},
): Promise<Uint8Array> {
  if (plaintext.length > MAX_PLAINTEXT_BYTES) throw new WebPushError("push payload is too large");
  const uaPublic = base64UrlDecode(subscription.p256dh);
  const authSecret = base64UrlDecode(subscription.auth);
  if (authSecret.length !== 16) throw new WebPushError("the auth secret must be 16 bytes");
  const salt = options.salt ?? crypto.getRandomValues(new Uint8Array(16));
  if (salt.length !== 16) throw new WebPushError("the salt must be 16 bytes");
  const recordSize = options.recordSize ?? 4096;

  const uaKey = await crypto.subtle.importKey(
    "jwk",
    { kty: "EC", crv: "P-256", ...pointToJwk(uaPublic), ext: true },
    { name: "ECDH", namedCurve: "P-256" },
    false,
    [],
  );
  let asPrivate: CryptoKey;
  let asPublic: Uint8Array;
  if (options.serverKeys) {
    asPublic = options.serverKeys.publicKey;
    asPrivate = await crypto.subtle.importKey(
      "jwk",
      {
        kty: "EC",
        crv: "P-256",
        ...pointToJwk(asPublic),
        d: base64UrlEncode(options.serverKeys.privateKey),
        ext: true,
      },
      { name: "ECDH", namedCurve: "P-256" },
      false,
      ["deriveBits"],
    );
  } else {
    const pair = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, [
      "deriveBits",
    ])) as CryptoKeyPair;
    asPrivate = pair.privateKey;
    asPublic = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
  }

  // RFC 8291 §3.3–3.4: IKM from the ECDH secret and the auth secret, then the RFC 8188 key and nonce.
  const ecdhSecret = new Uint8Array(await crypto.subtle.deriveBits(ecdh(uaKey), asPrivate, 256));
  const keyInfo = concat(encoder.encode("WebPush: info\0"), uaPublic, asPublic);
  const ikm = await hkdf(authSecret, ecdhSecret, keyInfo, 32);
  const cek = await hkdf(salt, ikm, encoder.encode("Content-Encoding: aes128gcm\0"), 16);
  const nonce = await hkdf(salt, ikm, encoder.encode("Content-Encoding: nonce\0"), 12);

  const record = concat(plaintext, new Uint8Array([2]));
  if (record.length + 16 > recordSize) throw new WebPushError("payload does not fit in one record");
  const key = await crypto.subtle.importKey("raw", bytes(cek), { name: "AES-GCM" }, false, ["encrypt"]);
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv: bytes(nonce), tagLength: 128 }, key, record),
  );
  const header = new Uint8Array(21);
  header.set(salt, 0);
  new DataView(header.buffer).setUint32(16, recordSize);
  header[20] = asPublic.length;
  return concat(header, asPublic, sealed);
}

/**
 * The user agent's side: decrypts a push message body. What a browser does; here for tests and for the
 * development push receiver.
 */
export async function decryptWebPush(
  body: Uint8Array,
  receiver: { publicKey: string; privateKey: string; auth: string },
): Promise<Uint8Array> {
  const salt = body.slice(0, 16);
  const idLength = body[20] ?? 0;
  const asPublic = body.slice(21, 21 + idLength);
  const sealed = body.slice(21 + idLength);
  const uaPublic = base64UrlDecode(receiver.publicKey);
  const uaPrivate = await crypto.subtle.importKey(
    "jwk",
    { kty: "EC", crv: "P-256", ...pointToJwk(uaPublic), d: receiver.privateKey, ext: true },
    { name: "ECDH", namedCurve: "P-256" },
    false,
    ["deriveBits"],
  );
  const asKey = await crypto.subtle.importKey(
    "jwk",
    { kty: "EC", crv: "P-256", ...pointToJwk(asPublic), ext: true },
    { name: "ECDH", namedCurve: "P-256" },
    false,
    [],
  );
  const ecdhSecret = new Uint8Array(await crypto.subtle.deriveBits(ecdh(asKey), uaPrivate, 256));
  const ikm = await hkdf(
    base64UrlDecode(receiver.auth),
    ecdhSecret,
    concat(encoder.encode("WebPush: info\0"), uaPublic, asPublic),
    32,
  );
  const cek = await hkdf(salt, ikm, encoder.encode("Content-Encoding: aes128gcm\0"), 16);
  const nonce = await hkdf(salt, ikm, encoder.encode("Content-Encoding: nonce\0"), 12);
  const key = await crypto.subtle.importKey("raw", bytes(cek), { name: "AES-GCM" }, false, ["decrypt"]);
  const record = new Uint8Array(
    await crypto.subtle.decrypt({ name: "AES-GCM", iv: bytes(nonce), tagLength: 128 }, key, bytes(sealed)),
  );
  let end = record.length - 1;
  while (end >= 0 && record[end] === 0) end--;
  if (record[end] !== 2) throw new WebPushError("not a last record (no 0x02 delimiter)");
  return record.slice(0, end);
}

/** A VAPID key pair as configured: the raw public point and the private scalar `d`, both base64url. */
export interface VapidKeys {
  publicKey: string;
  privateKey: string;
}

/** A fresh VAPID key pair (`npm run notifications:vapid` prints one for `wrangler secret put`). */
export async function generateVapidKeys(): Promise<VapidKeys> {
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
  const jwk = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey;
  const raw = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
  return { publicKey: base64UrlEncode(raw), privateKey: jwk.d ?? "" };
}

const signingKeys = new Map<string, Promise<CryptoKey>>();

function vapidSigningKey(keys: VapidKeys): Promise<CryptoKey> {
  const id = `${keys.publicKey}.${keys.privateKey}`;
  let key = signingKeys.get(id);
  if (!key) {
    key = crypto.subtle.importKey(
      "jwk",
      {
        kty: "EC",
        crv: "P-256",
        ...pointToJwk(base64UrlDecode(keys.publicKey)),
        d: keys.privateKey,
        ext: true,
      },
      { name: "ECDSA", namedCurve: "P-256" },
      false,
      ["sign"],
    );
    key.catch(() => signingKeys.delete(id));
    signingKeys.set(id, key);
  }
  return key;
}

/** The `aud` of a VAPID token: the push service's origin. */
export function audienceOf(endpoint: string): string {
  return new URL(endpoint).origin;
}

/**
 * The `Authorization` header of RFC 8292: `vapid t=<ES256 JWT>, k=<public key>`. The JWT's `aud` is the
 * endpoint's origin, `exp` at most 24 h ahead (12 h here), `sub` a contact URI of the operator.
 */
export async function vapidAuthorization(
  endpoint: string,
  keys: VapidKeys,
  subject: string,
  now: number,
  ttlSeconds = 12 * 3600,
): Promise<string> {
  const header = base64UrlEncode(encoder.encode(JSON.stringify({ typ: "JWT", alg: "ES256" })));
  const claims = base64UrlEncode(
    encoder.encode(
      JSON.stringify({ aud: audienceOf(endpoint), exp: Math.floor(now / 1000) + ttlSeconds, sub: subject }),
    ),
  );
  const input = `${header}.${claims}`;
  // WebCrypto's ECDSA signature is r ‖ s (IEEE P1363), exactly what JWS ES256 wants.
  const signature = new Uint8Array(
    await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" },
      await vapidSigningKey(keys),
      bytes(encoder.encode(input)),
    ),
  );
  return `vapid t=${input}.${base64UrlEncode(signature)}, k=${keys.publicKey}`;
}

/** Checks a VAPID header against a public key (tests and the development push receiver). */
export async function verifyVapid(
  authorization: string,
  publicKey: string,
): Promise<{ ok: true; claims: { aud: string; exp: number; sub: string } } | { ok: false }> {
  const m = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(authorization.trim());
  if (!m || m[2] !== publicKey) return { ok: false };
  const [header, payload, signature] = (m[1] ?? "").split(".");
  if (!header || !payload || !signature) return { ok: false };
  const key = await crypto.subtle.importKey(
    "jwk",
    { kty: "EC", crv: "P-256", ...pointToJwk(base64UrlDecode(publicKey)), ext: true },
    { name: "ECDSA", namedCurve: "P-256" },
    false,
    ["verify"],
  );
  const valid = await crypto.subtle.verify(
    { name: "ECDSA", hash: "SHA-256" },
    key,
    bytes(base64UrlDecode(signature)),
    bytes(encoder.encode(`${header}.${payload}`)),
  );
  if (!valid) return { ok: false };
  return { ok: true, claims: JSON.parse(new TextDecoder().decode(base64UrlDecode(payload))) };
}
