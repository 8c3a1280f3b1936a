import { describe, expect, it } from "vitest";
import {
  decoyPasswordHash,
  hashPassword,
  PBKDF2_ITERATIONS,
  passwordProblem,
  verifyPassword,
} from "./password.ts";

async function pbkdf2(iterations: number): Promise<ArrayBuffer> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode("pw"), "PBKDF2", false, [
    "deriveBits",
  ]);
  return crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: new Uint8Array(16), iterations },
    key,
    256,
  );
}

describe("PBKDF2 iteration count", () => {
  // Cloudflare's production runtime refuses PBKDF2 above 100,000 iterations ("iteration counts above
  // 100000 are not supported"); open-source workerd, behind wrangler dev and these tests, enforces no
  // limit (workerd#1471 made it an embedder setting). So the ceiling is pinned here, not probed.
  it("uses 100,000, the highest count Cloudflare's production runtime accepts", async () => {
    expect(PBKDF2_ITERATIONS).toBe(100_000);
    expect((await pbkdf2(PBKDF2_ITERATIONS)).byteLength).toBe(32);
  });

  it("refuses to hash above the production ceiling even where the local runtime would allow it", async () => {
    await expect(pbkdf2(PBKDF2_ITERATIONS + 1)).resolves.toBeInstanceOf(ArrayBuffer);
    await expect(hashPassword("Correct-horse-42", PBKDF2_ITERATIONS + 1)).rejects.toThrow(RangeError);
  });
});

describe("password hashing", () => {
  it("verifies the right password and rejects a wrong one", async () => {
    const stored = await hashPassword("Correct-horse-42");
    expect(await verifyPassword("Correct-horse-42", stored)).toBe(true);
    expect(await verifyPassword("Correct-horse-43", stored)).toBe(false);
    expect(await verifyPassword("", stored)).toBe(false);
  });

  it("salts every hash, so one password never hashes the same twice", async () => {
    const a = await hashPassword("Same-password-1");
    const b = await hashPassword("Same-password-1");
    expect(a).not.toBe(b);
    expect(a.split("$")[2]).not.toBe(b.split("$")[2]);
  });

  it("stores scheme, iteration count, salt and hash in one self-describing string", async () => {
    const stored = await hashPassword("Another-pass-9");
    expect(stored).toMatch(/^pbkdf2-sha256\$100000\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
  });

  it("still verifies hashes made with a lower iteration count", async () => {
    const stored = await hashPassword("Older-hash-77", 1000);
    expect(stored.split("$")[1]).toBe("1000");
    expect(await verifyPassword("Older-hash-77", stored)).toBe(true);
  });

  it("never matches a malformed or tampered hash", async () => {
    const stored = await hashPassword("Tamper-proof-1");
    const parts = stored.split("$");
    const flipped = `${parts[3]?.[0] === "A" ? "B" : "A"}${parts[3]?.slice(1)}`;
    for (const bad of [
      "",
      "plain-text",
      `md5$1$${parts[2]}$${parts[3]}`,
      `${parts[0]}$0$${parts[2]}$${parts[3]}`,
      `${parts[0]}$200000$${parts[2]}$${parts[3]}`,
      `${parts[0]}$${parts[1]}$${parts[2]}$${flipped}`,
      `${parts[0]}$${parts[1]}$${parts[2]}$${parts[3]?.slice(0, 10)}`,
      `${parts[0]}$${parts[1]}$!!!$${parts[3]}`,
    ]) {
      expect(await verifyPassword("Tamper-proof-1", bad)).toBe(false);
    }
  });

  it("has a decoy hash that no password is expected to match", async () => {
    const decoy = await decoyPasswordHash();
    expect(decoy).toMatch(/^pbkdf2-sha256\$100000\$/);
    expect(await verifyPassword("Correct-horse-42", decoy)).toBe(false);
  });
});

describe("password rules", () => {
  it("accepts 10 to 128 characters that mix two classes", () => {
    expect(passwordProblem("abcdefghi1")).toBeUndefined();
    expect(passwordProblem("correct horse battery")).toBeUndefined();
    expect(passwordProblem(`${"a".repeat(127)}B`)).toBeUndefined();
  });

  it("rejects passwords shorter than 10 or longer than 128 characters", () => {
    expect(passwordProblem("Abc12345!")).toMatch(/at least 10/);
    expect(passwordProblem(`${"a".repeat(128)}B`)).toMatch(/at most 128/);
  });

  it("rejects passwords made of one character class", () => {
    expect(passwordProblem("abcdefghijkl")).toMatch(/two of/);
    expect(passwordProblem("ABCDEFGHIJKL")).toMatch(/two of/);
    expect(passwordProblem("123456789012")).toMatch(/two of/);
    expect(passwordProblem("!@#$%^&*()_+")).toMatch(/two of/);
  });

  it("counts characters, not UTF-16 units, for the length rules", () => {
    expect(passwordProblem("🔒🔒🔒🔒🔒a")).toMatch(/at least 10/);
  });
});
