/**
 * The msgpack settings a Parley client needs in JavaScript (PROTOCOL.md, "JavaScript").
 *
 * - `useBigInt64: false` (the default, kept on purpose): every integer the server
 *   writes is below 2^53 and decodes to a plain Number. With `true`, int64/uint64
 *   values (timestamps) decode to bigint while small ones stay numbers, and
 *   `Date.now()` is encoded as float64, which an `int` field refuses.
 * - A rid must be a safe integer (1 .. 2^53 - 1): 2^53 is not, and the encoder
 *   writes it as float64, which the server answers with `INVALID_FIELD`.
 * - `bytes` must be a Uint8Array: a plain ArrayBuffer is an object without
 *   properties to the encoder and goes out as an empty map. {@link encodeRequest}
 *   turns ArrayBuffers and other views into Uint8Arrays.
 * - `ignoreUndefined: true`: an optional field set to `undefined` is left out
 *   rather than sent as nil.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";

const encoder = new Encoder({ ignoreUndefined: true, useBigInt64: false });
const decoder = new Decoder({ useBigInt64: false });

/**
 * A request as bytes for one binary WebSocket message.
 * @param {{t: string, rid: number}} request
 * @returns {Uint8Array}
 */
export function encodeRequest(request) {
  if (!Number.isSafeInteger(request.rid) || request.rid < 1) {
    throw new RangeError(`rid must be a safe integer >= 1, got ${request.rid}`);
  }
  return encoder.encode(wireValue(request, "request"));
}

/**
 * A server message from the bytes of one binary WebSocket message.
 * @param {ArrayBuffer | Uint8Array} data
 * @returns {import("./protocol.js").ServerMessage}
 */
export function decodeServerMessage(data) {
  const message = decoder.decode(data instanceof Uint8Array ? data : new Uint8Array(data));
  if (message === null || typeof message !== "object" || typeof Reflect.get(message, "t") !== "string") {
    throw new TypeError("a server message is a map with a string t");
  }
  return /** @type {import("./protocol.js").ServerMessage} */ (message);
}

/**
 * `value` with every binary buffer as a Uint8Array; bigints are refused.
 * @param {unknown} value
 * @param {string} path where the value is, for the error message
 * @returns {unknown}
 */
function wireValue(value, path) {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === "bigint") {
    throw new TypeError(`${path} is a bigint; Parley integers are Numbers below 2^53`);
  }
  if (Array.isArray(value)) return value.map((item, i) => wireValue(item, `${path}[${i}]`));
  if (value !== null && typeof value === "object") {
    /** @type {Record<string, unknown>} */
    const out = {};
    for (const [key, item] of Object.entries(value)) out[key] = wireValue(item, `${path}.${key}`);
    return out;
  }
  return value;
}
