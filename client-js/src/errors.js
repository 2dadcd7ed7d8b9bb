import { RETRYABLE_ERRORS, TERMINAL_CLOSE_CODES } from "./codes.js";

/** The server answered a request with a typed `error`; nothing was changed. */
export class ParleyError extends Error {
  /**
   * @param {number} code the error code (PROTOCOL.md 14)
   * @param {string} name its name, e.g. `BAD_CREDENTIALS`
   * @param {string} message the server's explanation
   */
  constructor(code, name, message) {
    super(`${name} (${code}): ${message}`);
    this.name = "ParleyError";
    this.code = code;
    this.errorName = name;
    this.serverMessage = message;
  }

  /** Whether sending the same request again later may succeed. */
  get retryable() {
    return RETRYABLE_ERRORS.has(this.code);
  }
}

/** The connection ended before the reply came: the request may or may not have run. */
export class ConnectionLost extends Error {
  /**
   * @param {number | null} closeCode
   * @param {string} [reason]
   */
  constructor(closeCode, reason = "") {
    super(`connection closed (code ${closeCode})${reason ? `: ${reason}` : ""}`);
    this.name = "ConnectionLost";
    this.closeCode = closeCode;
    this.reason = reason;
  }
}

/** No reply came within the client's own timeout: the request may or may not have run. */
export class RequestTimeout extends Error {
  /** @param {string} type @param {number} seconds */
  constructor(type, seconds) {
    super(`no reply to ${type} within ${seconds} s`);
    this.name = "RequestTimeout";
  }
}

/** The client is closed: by its owner, or the server ended it for good. */
export class ClientClosed extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "ClientClosed";
  }
}

/**
 * Whether a client should reconnect after a close with `code` (null: the connection
 * was lost without a close frame), including codes this version does not know
 * (PROTOCOL.md 15).
 * @param {number | null | undefined} code
 */
export function shouldReconnect(code) {
  if (code == null) return true;
  if (code >= 4500 && code <= 4999) return false;
  return !TERMINAL_CLOSE_CODES.has(code);
}
