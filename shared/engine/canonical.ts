/**
 * Canonical JSON: object keys sorted, `undefined` members dropped, no whitespace. Two structurally equal
 * values give the same string whatever order their keys were created in.
 * @internal
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    return value === undefined ? "null" : JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    let s = "[";
    for (let i = 0; i < value.length; i++) {
      if (i > 0) s += ",";
      s += canonicalJson(value[i]);
    }
    return s + "]";
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  let s = "{";
  let first = true;
  for (const key of keys) {
    const v = record[key];
    if (v === undefined) continue;
    if (!first) s += ",";
    first = false;
    s += JSON.stringify(key) + ":" + canonicalJson(v);
  }
  return s + "}";
}
