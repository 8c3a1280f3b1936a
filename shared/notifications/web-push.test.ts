import { describe, expect, it } from "vitest";
import {
  audienceOf,
  base64UrlDecode,
  base64UrlEncode,
  decryptWebPush,
  encryptWebPush,
  generateVapidKeys,
  vapidAuthorization,
  verifyVapid,
} from "./web-push.ts";

// RFC 8291 Appendix A: the published example, byte for byte.
const RFC = {
  plaintext: "When I grow up, I want to be a watermelon",
  asPublic: "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8",
  asPrivate: "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw",
  uaPublic: "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
  uaPrivate: "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94",
  salt: "DGv6ra1nlYgDCS1FRnbzlw",
  auth: "BTBZMqHH6r4Tts7J_aSIgg",
  body: "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
};

const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** A browser's subscription keys: a P-256 key pair and a random auth secret. */
async function userAgent() {
  const pair = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, [
    "deriveBits",
  ])) as CryptoKeyPair;
  const raw = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
  const jwk = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey;
  return {
    publicKey: base64UrlEncode(raw),
    privateKey: jwk.d as string,
    auth: base64UrlEncode(crypto.getRandomValues(new Uint8Array(16))),
  };
}

describe("Web Push message encryption (RFC 8291)", () => {
  it("produces exactly the ciphertext of the RFC's example from its keys and salt", async () => {
    const body = await encryptWebPush(
      new TextEncoder().encode(RFC.plaintext),
      { p256dh: RFC.uaPublic, auth: RFC.auth },
      {
        salt: base64UrlDecode(RFC.salt),
        serverKeys: { publicKey: base64UrlDecode(RFC.asPublic), privateKey: base64UrlDecode(RFC.asPrivate) },
      },
    );
    expect(base64UrlEncode(body)).toBe(RFC.body);
  });

  it("decrypts the RFC's example with the user agent's keys", async () => {
    const plain = await decryptWebPush(base64UrlDecode(RFC.body), {
      publicKey: RFC.uaPublic,
      privateKey: RFC.uaPrivate,
      auth: RFC.auth,
    });
    expect(text(plain)).toBe(RFC.plaintext);
  });

  it("uses a fresh key and salt per message, and the subscriber can read every one", async () => {
    const ua = await userAgent();
    const message = new TextEncoder().encode(JSON.stringify({ title: "Order filled: ACME", body: "ü ✓" }));
    const a = await encryptWebPush(message, { p256dh: ua.publicKey, auth: ua.auth });
    const b = await encryptWebPush(message, { p256dh: ua.publicKey, auth: ua.auth });
    expect(base64UrlEncode(a.slice(0, 16))).not.toBe(base64UrlEncode(b.slice(0, 16)));
    expect(text(await decryptWebPush(a, ua))).toBe(text(message));
    expect(text(await decryptWebPush(b, ua))).toBe(text(message));
  });

  it("cannot be read with another subscription's auth secret", async () => {
    const ua = await userAgent();
    const body = await encryptWebPush(new TextEncoder().encode("secret"), {
      p256dh: ua.publicKey,
      auth: ua.auth,
    });
    const other = base64UrlEncode(crypto.getRandomValues(new Uint8Array(16)));
    await expect(decryptWebPush(body, { ...ua, auth: other })).rejects.toThrow();
  });

  it("refuses malformed subscription keys", async () => {
    await expect(
      encryptWebPush(new Uint8Array(1), { p256dh: base64UrlEncode(new Uint8Array(10)), auth: RFC.auth }),
    ).rejects.toThrow(/65 bytes/);
    await expect(encryptWebPush(new Uint8Array(1), { p256dh: RFC.uaPublic, auth: "AAAA" })).rejects.toThrow(
      /16 bytes/,
    );
  });
});

describe("VAPID (RFC 8292)", () => {
  it("signs an ES256 token for the push service's origin that verifies with the public key", async () => {
    const keys = await generateVapidKeys();
    expect(base64UrlDecode(keys.publicKey)).toHaveLength(65);
    expect(base64UrlDecode(keys.privateKey)).toHaveLength(32);
    const now = Date.UTC(2026, 10, 20, 12);
    const header = await vapidAuthorization(
      "https://push.example.net/wpush/v2/abc?x=1",
      keys,
      "mailto:ops@prepx.dev",
      now,
    );
    expect(header).toMatch(/^vapid t=[\w-]+\.[\w-]+\.[\w-]+, k=[\w-]+$/);
    const checked = await verifyVapid(header, keys.publicKey);
    expect(checked).toEqual({
      ok: true,
      claims: { aud: "https://push.example.net", exp: now / 1000 + 12 * 3600, sub: "mailto:ops@prepx.dev" },
    });
    const [, jwt] = /t=([^,]+)/.exec(header) as unknown as [string, string];
    expect(JSON.parse(text(base64UrlDecode(jwt.split(".")[0] as string)))).toEqual({
      typ: "JWT",
      alg: "ES256",
    });
  });

  it("does not verify with another key", async () => {
    const [a, b] = await Promise.all([generateVapidKeys(), generateVapidKeys()]);
    const header = await vapidAuthorization("https://push.example.net/x", a, "mailto:a@b.c", Date.now());
    expect((await verifyVapid(header.replace(a.publicKey, b.publicKey), b.publicKey)).ok).toBe(false);
  });

  it("takes the audience from the endpoint's origin only", () => {
    expect(audienceOf("https://fcm.googleapis.com/fcm/send/abc:def")).toBe("https://fcm.googleapis.com");
    expect(audienceOf("http://127.0.0.1:4000/push/1")).toBe("http://127.0.0.1:4000");
  });
});
