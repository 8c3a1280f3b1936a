/**
 * Commands as callers send them to the OrderBook by RPC, and their normalisation into the exact engine
 * commands that are processed, journaled and replayed.
 * @internal
 */
import type {
  CancelCommand,
  EngineCommand,
  PlaceCommand,
  ReplaceCommand,
} from "../../shared/engine/types.ts";
import { MAX_ID_LENGTH } from "../../shared/engine/validate.ts";
import { type Packed, WireFormatError, WireReader, WireWriter } from "../../shared/engine/wire.ts";

type WithOptionalNow<T extends { now: number }> = Omit<T, "now"> & { now?: number };

/** A command a caller may submit: place / cancel / replace; `now` defaults to the book's clock. */
export type BookCommand =
  | WithOptionalNow<PlaceCommand>
  | WithOptionalNow<CancelCommand>
  | WithOptionalNow<ReplaceCommand>;

const INVALID_INPUT = "invalid_input: ";

/** A caller passed something that is not a book command at all (a bug in the caller, not a reject). */
export class BookInputError extends Error {
  constructor(message: string) {
    super(`${INVALID_INPUT}${message}`);
    this.name = "BookInputError";
  }
}

/**
 * The reason of a {@link BookInputError} a book call threw, or null for any other error. Only the message
 * survives the RPC boundary (the class does not), so the caller recognises it by its prefix.
 */
export function bookInputReason(err: unknown): string | null {
  const message = err instanceof Error ? err.message : String(err);
  return message.startsWith(INVALID_INPUT) ? message.slice(INVALID_INPUT.length) : null;
}

function unknownKind(kind: unknown): BookInputError {
  return new BookInputError(`kind must be "place", "cancel" or "replace", got ${JSON.stringify(kind)}`);
}

const FIELDS = {
  place: [
    "orderId",
    "account",
    "side",
    "type",
    "tif",
    "qty",
    "limitPrice",
    "stopPrice",
    "postOnly",
    "stp",
    "expiresAt",
  ],
  cancel: ["orderId", "account"],
  replace: ["orderId", "newOrderId", "account", "qty", "limitPrice", "stopPrice"],
} as const satisfies Record<"place" | "cancel" | "replace", readonly string[]>;

/**
 * Keep a field value only in a form that survives the JSON journal unchanged, so that a replay processes
 * exactly what the live engine processed. Strings longer than any valid id are cut to one character over
 * the limit (still invalid, but bounded); non-finite numbers become -1 and other values null (both
 * still rejected by the engine as invalid).
 */
function journalSafe(value: unknown): string | number | boolean | null {
  switch (typeof value) {
    case "string":
      return value.length > MAX_ID_LENGTH + 1 ? value.slice(0, MAX_ID_LENGTH + 1) : value;
    case "number":
      return Number.isFinite(value) ? value : -1;
    case "boolean":
      return value;
    default:
      return null;
  }
}

/** {@link journalSafe} of a field that may be absent (`undefined` stays `undefined`). */
function field(value: unknown): string | number | boolean | null | undefined {
  return value === undefined ? undefined : journalSafe(value);
}

/**
 * The engine command for one submitted command, with `now` filled in. Unknown fields are dropped.
 * Throws {@link BookInputError} for a value that is not a place / cancel / replace command.
 *
 * Each kind is built by one literal with every field of the kind (`undefined` where the caller left it
 * out, which the engine reads as absent and `JSON.stringify` leaves out of the journal): one object shape
 * per kind, so the engine's reads of command fields stay monomorphic.
 */
export function normalizeCommand(input: unknown, now: number): EngineCommand {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new BookInputError("a command must be an object");
  }
  const raw = input as Record<string, unknown>;
  const command = buildCommand(raw.kind, raw.now, now, (name) => raw[name]);
  if (command === null) throw unknownKind(raw.kind);
  return command;
}

/**
 * The normalised command of `kind` (null for another kind) at `rawNow` (default `now`), each field taken
 * with `take`, called once per field of the kind in {@link FIELDS} order.
 */
function buildCommand(
  kind: unknown,
  rawNow: unknown,
  now: number,
  take: (name: string) => unknown,
): EngineCommand | null {
  const at = rawNow === undefined ? now : journalSafe(rawNow);
  const f = (name: string) => field(take(name));
  // The engine validates every value; these casts only name the fields. Object literals evaluate their
  // fields in source order, which is FIELDS order.
  switch (kind) {
    case "place":
      return {
        kind,
        now: at,
        orderId: f("orderId"),
        account: f("account"),
        side: f("side"),
        type: f("type"),
        tif: f("tif"),
        qty: f("qty"),
        limitPrice: f("limitPrice"),
        stopPrice: f("stopPrice"),
        postOnly: f("postOnly"),
        stp: f("stp"),
        expiresAt: f("expiresAt"),
      } as unknown as EngineCommand;
    case "cancel":
      return { kind, now: at, orderId: f("orderId"), account: f("account") } as unknown as EngineCommand;
    case "replace":
      return {
        kind,
        now: at,
        orderId: f("orderId"),
        newOrderId: f("newOrderId"),
        account: f("account"),
        qty: f("qty"),
        limitPrice: f("limitPrice"),
        stopPrice: f("stopPrice"),
      } as unknown as EngineCommand;
    default:
      return null;
  }
}

/** Commands packed for `submitMany` (shared/engine/wire.ts): they cross the RPC boundary as three values. */
export interface PackedCommands extends Packed {
  readonly __commands?: never;
}

const KINDS = ["place", "cancel", "replace"] as const;
/** Fields whose strings repeat across a batch (packed once per batch): the rest are order ids. */
const REPEATING = new Set<string>(["account", "side", "type", "tif", "stp"]);
/** Per kind (by index in `KINDS`): its fields, and whether each one's strings repeat across a batch. */
const PACKED_FIELDS = KINDS.map((kind) =>
  FIELDS[kind].map((name) => ({ name, repeats: REPEATING.has(name) })),
);

/**
 * Pack `commands` for `submitMany`: each command's kind, `now` and the fields of its kind, whatever their
 * values (the book normalises and the engine validates them as if they had come as objects). Throws
 * {@link BookInputError} for a value that is not a place / cancel / replace command.
 */
export function packCommands(commands: readonly BookCommand[]): PackedCommands {
  // Kind, now (two numbers) and each field (at most two numbers).
  const w = new WireWriter(1 + commands.length * (3 + 2 * FIELDS.place.length));
  w.num(commands.length);
  for (const c of commands as readonly unknown[]) {
    const raw = (typeof c === "object" && c !== null ? c : {}) as Record<string, unknown>;
    const k = KINDS.indexOf(raw.kind as (typeof KINDS)[number]);
    if (k === -1) throw unknownKind(raw.kind);
    w.num(k);
    w.value(raw.now, false);
    for (const f of PACKED_FIELDS[k] as (typeof PACKED_FIELDS)[number]) w.value(raw[f.name], f.repeats);
  }
  return w.finish();
}

/**
 * The commands {@link packCommands} packed, normalised as {@link normalizeCommand} would normalise the
 * objects (`now` filled in where the caller left it out). At most `max` of them; throws
 * {@link BookInputError} for a pack that does not hold together or holds more.
 */
export function unpackCommands(packed: PackedCommands, max: number, now: number): EngineCommand[] {
  try {
    const r = new WireReader(packed);
    const count = r.count();
    if (count > max) throw new BookInputError(`at most ${max} commands per batch`);
    const out: EngineCommand[] = new Array(count);
    const take = () => r.value();
    for (let i = 0; i < count; i++) {
      const kind = KINDS[r.num()];
      const command = buildCommand(kind, r.value(), now, take);
      if (command === null) throw new WireFormatError("unknown command kind");
      out[i] = command;
    }
    if (!r.done) throw new WireFormatError("data after the last command");
    return out;
  } catch (err) {
    if (err instanceof WireFormatError) throw new BookInputError(err.message);
    throw err;
  }
}
