// The msgpack settings of the SDK against the pitfalls of PROTOCOL.md section 24,
// checked on the bytes and against a real node.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { decode, encode } from "@msgpack/msgpack";
import { ParleyClient, decodeServerMessage, encodeRequest } from "../src/index.js";
import { WebSocketClass, nodeForTests, uniqueUser } from "./node.js";

describe("the codec's bytes", () => {
  it("writes the largest safe rid as a uint 64 and refuses 2^53", () => {
    const bytes = encodeRequest({ t: "ping", rid: Number.MAX_SAFE_INTEGER });
    assert.deepEqual([...bytes.slice(-9)], [0xcf, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    assert.throws(() => encodeRequest({ t: "ping", rid: 2 ** 53 }), RangeError);
    assert.throws(() => encodeRequest({ t: "ping", rid: 0 }), RangeError);
    assert.throws(() => encodeRequest({ t: "ping", rid: 1.5 }), RangeError);
  });

  it("writes Date.now() as an integer, not a float", () => {
    const bytes = encodeRequest(/** @type {any} */ ({ t: "get_history", rid: 1, before_time: Date.now() }));
    const at = bytes.indexOf(0xcf); // uint 64
    assert.ok(at > 0, "a uint 64 is written");
    assert.equal(bytes.indexOf(0xcb), -1, "no float 64 is written");
  });

  it("sends an ArrayBuffer or a DataView as bin, never as an empty map", () => {
    const data = new Uint8Array([1, 2, 3]).buffer;
    assert.deepEqual(encode({ data }), encode({ data: {} }), "the pitfall: a bare ArrayBuffer is a map");
    for (const value of [data, new DataView(data), new Uint8Array(data)]) {
      const sent = /** @type {any} */ (decode(encodeRequest(/** @type {any} */ ({ t: "x", rid: 1, content: { data: value } }))));
      assert.ok(sent.content.data instanceof Uint8Array);
      assert.deepEqual([...sent.content.data], [1, 2, 3]);
    }
  });

  it("refuses bigints and leaves undefined fields out", () => {
    assert.throws(() => encodeRequest(/** @type {any} */ ({ t: "x", rid: 1, seq: 5n })), TypeError);
    const sent = /** @type {any} */ (decode(encodeRequest(/** @type {any} */ ({ t: "x", rid: 1, nickname: undefined }))));
    assert.equal("nickname" in sent, false);
  });

  it("reads uint 64 timestamps as Numbers", () => {
    const message = decodeServerMessage(new Uint8Array([0x82, 0xa1, 0x74, 0xa4, 0x70, 0x6f, 0x6e, 0x67, 0xa1, 0x78, 0xcf, 0, 0, 1, 0x9b, 0x9a, 0xe7, 0x2c, 0]));
    assert.equal(/** @type {any} */ (message).x, 1767830400000);
    assert.throws(() => decodeServerMessage(new Uint8Array([0x01])), TypeError);
  });
});

describe("the codec against a node", () => {
  const running = nodeForTests();

  /** One raw request on a bare WebSocket, and the server's answer. @param {Uint8Array} frame */
  async function rawRoundTrip(frame) {
    const ws = new WebSocketClass(running.node.url, ["parley.v1"]);
    ws.binaryType = "arraybuffer";
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    const answer = new Promise((resolve) => {
      ws.onmessage = (event) => resolve(decodeServerMessage(event.data));
    });
    ws.send(frame);
    const reply = /** @type {any} */ (await answer);
    ws.close();
    return reply;
  }

  it("the server answers the pitfalls as documented", async () => {
    const float = await rawRoundTrip(encode({ t: "ping", rid: 2 ** 53 }));
    assert.equal(float.t, "error");
    assert.equal(float.name, "INVALID_FIELD");
    assert.equal(float.rid, 0);
    const safe = await rawRoundTrip(encodeRequest({ t: "ping", rid: Number.MAX_SAFE_INTEGER }));
    assert.equal(safe.t, "pong");
    assert.equal(safe.rid, Number.MAX_SAFE_INTEGER);
    assert.equal(typeof safe.server_time, "number");
  });

  it("custom content goes through as bytes from an ArrayBuffer", async () => {
    const alice = new ParleyClient(running.node.url, { WebSocket: WebSocketClass });
    await alice.connect();
    const id = uniqueUser("bytes");
    await alice.register(id, "password-1");
    await alice.login(id, "password-1");
    const data = new Uint8Array([0, 255, 7]).buffer;
    const sent = await alice.sendMessage({ type: 110, data: /** @type {any} */ (data) }, { toUserId: id });
    const { items } = await alice.request("pull_messages", { conversation_id: sent.conversation_id, from_seq: sent.seq, to_seq: sent.seq });
    const content = /** @type {any} */ (items[0].content);
    assert.ok(content.data instanceof Uint8Array);
    assert.deepEqual([...content.data], [0, 255, 7]);
    alice.close();
  });
});
