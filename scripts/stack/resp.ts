import net from "node:net";

/**
 * A small RESP2 client for redis-server: enough for the Upstash shim and the stack's own checks.
 * Replies keep Redis' distinctions the shim needs: a simple-string reply (`+OK`) is a `RespStatus`,
 * a bulk string is a `Buffer` (binary safe), an integer a `number`, nil `null`, an error a `RespError`.
 */
export class RespError extends Error {
  override name = "RespError";
}

export class RespStatus {
  readonly value: string;
  constructor(value: string) {
    this.value = value;
  }
}

export type RespReply = RespStatus | RespError | Buffer | number | null | RespReply[];

export type RespArg = string | Buffer | number;

const CRLF = Buffer.from("\r\n");

/** Encodes one command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly RespArg[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const data = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg));
    parts.push(Buffer.from(`$${data.length}\r\n`), data, CRLF);
  }
  return Buffer.concat(parts);
}

/** Incremental RESP2 parser: feed it chunks, it returns the complete replies so far. */
export class RespParser {
  private buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): RespReply[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const replies: RespReply[] = [];
    let offset = 0;
    for (;;) {
      const parsed = this.parse(offset);
      if (!parsed) break;
      replies.push(parsed.value);
      offset = parsed.next;
    }
    this.buffer = this.buffer.subarray(offset);
    return replies;
  }

  private parse(offset: number): { value: RespReply; next: number } | undefined {
    const buf = this.buffer;
    if (offset >= buf.length) return undefined;
    const lineEnd = buf.indexOf(CRLF, offset);
    if (lineEnd < 0) return undefined;
    const type = String.fromCharCode(buf[offset] ?? 0);
    const line = buf.toString("utf8", offset + 1, lineEnd);
    const next = lineEnd + 2;
    switch (type) {
      case "+":
        return { value: new RespStatus(line), next };
      case "-":
        return { value: new RespError(line), next };
      case ":":
        return { value: Number(line), next };
      case "$": {
        const length = Number(line);
        if (length < 0) return { value: null, next };
        if (buf.length < next + length + 2) return undefined;
        return { value: Buffer.from(buf.subarray(next, next + length)), next: next + length + 2 };
      }
      case "*": {
        const count = Number(line);
        if (count < 0) return { value: null, next };
        const items: RespReply[] = [];
        let at = next;
        for (let i = 0; i < count; i++) {
          const item = this.parse(at);
          if (!item) return undefined;
          items.push(item.value);
          at = item.next;
        }
        return { value: items, next: at };
      }
      default:
        throw new Error(`RESP protocol error: unexpected byte ${JSON.stringify(type)}`);
    }
  }
}

interface Pending {
  resolve: (reply: RespReply) => void;
  reject: (err: Error) => void;
}

/** One connection; commands are pipelined and answered in order. */
export class RedisConnection {
  private readonly socket: net.Socket;
  private readonly parser = new RespParser();
  private readonly pending: Pending[] = [];
  private closedWith: Error | undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on("data", (chunk) => {
      let replies: RespReply[];
      try {
        replies = this.parser.push(chunk);
      } catch (err) {
        socket.destroy(err as Error);
        return;
      }
      for (const reply of replies) this.pending.shift()?.resolve(reply);
    });
    socket.on("error", (err) => this.fail(err));
    socket.on("close", () => this.fail(new Error("redis connection closed")));
  }

  static connect(port: number, host = "127.0.0.1", timeoutMs = 2000): Promise<RedisConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host });
      const timer = setTimeout(
        () => socket.destroy(new Error(`connect to ${host}:${port} timed out`)),
        timeoutMs,
      );
      const onError = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      socket.once("error", onError);
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.removeListener("error", onError);
        resolve(new RedisConnection(socket));
      });
    });
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  private fail(err: Error): void {
    if (!this.closedWith) this.closedWith = err;
    for (const p of this.pending.splice(0)) p.reject(err);
  }

  /**
   * Sends several commands in one write and resolves with their replies in order. Nothing from another
   * caller can come between them, which is what makes MULTI … EXEC on a shared connection safe.
   */
  send(commands: readonly (readonly RespArg[])[]): Promise<RespReply[]> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const replies = commands.map(
      () =>
        new Promise<RespReply>((resolve, reject) => {
          this.pending.push({ resolve, reject });
        }),
    );
    this.socket.write(Buffer.concat(commands.map(encodeCommand)));
    return Promise.all(replies);
  }

  /** One command; a RespError reply is returned, not thrown. */
  async command(...args: RespArg[]): Promise<RespReply> {
    const [reply] = await this.send([args]);
    return reply ?? null;
  }

  /** One command; a RespError reply is thrown. */
  async call(...args: RespArg[]): Promise<RespReply> {
    const reply = await this.command(...args);
    if (reply instanceof RespError) throw reply;
    return reply;
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }
}
