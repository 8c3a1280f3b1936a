/**
 * PostgreSQL's COPY protocol over node-postgres, without pg-copy-streams: `COPY … TO STDOUT` streams a
 * table out in chunks, `COPY … FROM STDIN` loads it back. node-postgres hands the CopyData / CopyIn
 * messages of the running query to the query object (its "submittable" interface), which is all this
 * needs. Used by the logical backup (`scripts/db/backup.ts`).
 */
import type { PgClient } from "../stack/pg.ts";

interface Connection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  sendCopyFail(message: string): void;
}

/** Rows reported by `COPY n`. */
const copied = (text: string | undefined) => Number(/^COPY (\d+)/.exec(text ?? "")?.[1] ?? 0);

abstract class CopyQuery {
  readonly text: string;
  rows = 0;
  private settle: { resolve(rows: number): void; reject(error: Error): void } | undefined;
  readonly done: Promise<number>;

  constructor(text: string) {
    this.text = text;
    this.done = new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
    });
  }

  submit(connection: Connection): void {
    connection.query(this.text);
  }
  handleCommandComplete(msg: { text?: string }): void {
    this.rows = copied(msg.text);
  }
  handleReadyForQuery(): void {
    this.settle?.resolve(this.rows);
  }
  handleError(error: Error): void {
    this.settle?.reject(error);
  }
  handleCopyInResponse(connection: Connection): void {
    connection.sendCopyFail("unexpected COPY FROM");
  }
  handleCopyData(_msg: { chunk: Buffer }): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
}

class CopyOut extends CopyQuery {
  private readonly onChunk: (chunk: Buffer) => void;
  constructor(text: string, onChunk: (chunk: Buffer) => void) {
    super(text);
    this.onChunk = onChunk;
  }
  override handleCopyData(msg: { chunk: Buffer }): void {
    this.onChunk(msg.chunk);
  }
}

class CopyIn extends CopyQuery {
  private readonly data: Buffer;
  constructor(text: string, data: Buffer) {
    super(text);
    this.data = data;
  }
  override handleCopyInResponse(connection: Connection): void {
    const size = 64 * 1024;
    for (let i = 0; i < this.data.length; i += size)
      connection.sendCopyFromChunk(this.data.subarray(i, i + size));
    connection.endCopyFrom();
  }
}

const run = (client: PgClient, q: CopyQuery) => {
  (client as unknown as { query(submittable: CopyQuery): unknown }).query(q);
  return q.done;
};

/** Runs `COPY … TO STDOUT`, handing each chunk to `onChunk`; resolves with the number of rows. */
export function copyOut(client: PgClient, text: string, onChunk: (chunk: Buffer) => void): Promise<number> {
  return run(client, new CopyOut(text, onChunk));
}

/** Runs `COPY … FROM STDIN` with `data` (COPY text format); resolves with the number of rows. */
export function copyIn(client: PgClient, text: string, data: Buffer): Promise<number> {
  return run(client, new CopyIn(text, data));
}
