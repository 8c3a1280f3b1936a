import { describe, expect, it } from "vitest";
import { parseAddress } from "./neon-proxy.ts";
import { encodeCommand, RespError, RespParser, RespStatus } from "./resp.ts";
import { adaptScript, encodeReply } from "./upstash-shim.ts";

describe("RESP parser", () => {
  it("parses replies split across arbitrary chunk boundaries", () => {
    const wire = Buffer.from(
      "+OK\r\n:42\r\n$5\r\nhé\r\n\r\n$-1\r\n*3\r\n$1\r\na\r\n*1\r\n:1\r\n-ERR boom\r\n",
    );
    for (let cut = 1; cut < wire.length; cut++) {
      const parser = new RespParser();
      const replies = [...parser.push(wire.subarray(0, cut)), ...parser.push(wire.subarray(cut))];
      expect(replies).toEqual([
        new RespStatus("OK"),
        42,
        Buffer.from("hé\r\n"),
        null,
        [Buffer.from("a"), [1], new RespError("ERR boom")],
      ]);
    }
  });

  it("encodes commands as arrays of binary-safe bulk strings", () => {
    expect(encodeCommand(["SET", "k", 1, Buffer.from([0, 255])]).toString("latin1")).toBe(
      "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n$2\r\n\u0000\u00ff\r\n",
    );
  });
});

describe("Upstash shim encoding", () => {
  it("base64-encodes every string except OK, recursively, and keeps numbers and nil", () => {
    const reply = [
      new RespStatus("OK"),
      new RespStatus("PONG"),
      Buffer.from("ü"),
      7,
      null,
      [Buffer.from("x")],
    ];
    expect(encodeReply(reply, true)).toEqual(["OK", "UE9ORw==", "w7w=", 7, null, ["eA=="]]);
    expect(encodeReply(reply, false)).toEqual(["OK", "PONG", "ü", 7, null, ["x"]]);
  });

  it("drops the script flags Redis 7.0 does not know and keeps the line numbers", () => {
    expect(adaptScript("#!lua flags=allow-key-locking\nreturn 1")).toBe("\nreturn 1");
    expect(adaptScript("#!lua flags=no-writes,allow-key-locking\nreturn 1")).toBe(
      "#!lua flags=no-writes\nreturn 1",
    );
    expect(adaptScript("#!lua flags=no-writes\nreturn 1")).toBe("#!lua flags=no-writes\nreturn 1");
    expect(adaptScript("return 1")).toBe("return 1");
  });
});

describe("Neon proxy addresses", () => {
  it("parses host:port and [v6]:port and rejects the rest", () => {
    expect(parseAddress("127.0.0.1:5432")).toEqual({ host: "127.0.0.1", port: 5432 });
    expect(parseAddress("[::1]:54320")).toEqual({ host: "[::1]", port: 54320 });
    expect(parseAddress("localhost")).toBeUndefined();
    expect(parseAddress("localhost:99999")).toBeUndefined();
    expect(parseAddress(null)).toBeUndefined();
  });
});
