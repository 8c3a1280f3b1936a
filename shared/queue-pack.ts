/**
 * Several event bodies in one Queue message.
 *
 * Every event on the `trade-events` Queue keeps its own stable id (`${symbol}:${seq}` for book events,
 * the account event ids for UserSession events), and consumers dedupe on those ids. What a message is
 * only decides how events travel: a Queue message has a fixed cost on both ends (a `sendBatch` slot,
 * serialisation, an ack), and a busy book produces a few events per order, so producers put up to
 * {@link PACK_MAX_EVENTS} events in one message. A pack is retried, acknowledged or dead-lettered as a
 * whole message; its events are processed one by one, idempotently, as if they had come alone.
 *
 * A message body is either one event (what older producers sent, still accepted) or
 * `{"pack":1,"bodies":[...]}`.
 */

export interface EventPack {
  pack: 1;
  bodies: unknown[];
}

/** Events per pack: 100 × a few hundred bytes stays far below the Queues limit of 128 KB per message. */
export const PACK_MAX_EVENTS = 100;
/** Serialised bytes per pack at most (JSON length; bodies are ASCII JSON in practice). */
export const PACK_MAX_BYTES = 100_000;

export function isEventPack(body: unknown): body is EventPack {
  return (
    typeof body === "object" &&
    body !== null &&
    (body as { pack?: unknown }).pack === 1 &&
    Array.isArray((body as { bodies?: unknown }).bodies)
  );
}

/** The event bodies a message carries: the pack's, or the message itself. */
export function unpack(body: unknown): unknown[] {
  return isEventPack(body) ? body.bodies : [body];
}

/**
 * Group `bodies` (in order) into packs of at most {@link PACK_MAX_EVENTS} events and about
 * {@link PACK_MAX_BYTES} bytes. `sizeOf` gives a body's serialised size when the caller already knows it.
 */
export function packBodies(
  bodies: readonly unknown[],
  sizeOf: (body: unknown, index: number) => number = (b) => JSON.stringify(b).length,
): EventPack[] {
  const packs: EventPack[] = [];
  let current: unknown[] = [];
  let bytes = 0;
  bodies.forEach((body, i) => {
    const size = sizeOf(body, i);
    if (current.length > 0 && (current.length >= PACK_MAX_EVENTS || bytes + size > PACK_MAX_BYTES)) {
      packs.push({ pack: 1, bodies: current });
      current = [];
      bytes = 0;
    }
    current.push(body);
    bytes += size + 1;
  });
  if (current.length > 0) packs.push({ pack: 1, bodies: current });
  return packs;
}
