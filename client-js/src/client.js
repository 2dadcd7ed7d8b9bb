/**
 * A session with a Parley server, for browsers and node (>= 20 with a global WebSocket).
 *
 *     const client = new ParleyClient("ws://127.0.0.1:8080/");
 *     await client.connect();
 *     await client.login("alice", "correct-horse");
 *     client.on("message", (push) => show(push.message));
 *     const sent = await client.sendText("hello", { toUserId: "bob" });
 *
 * Every request is `request(type, fields)`, typed by protocol.d.ts: it resolves with
 * the reply the request is answered with, or rejects with {@link ParleyError} (the
 * server's typed error), {@link RequestTimeout} or {@link ConnectionLost}. Replies are
 * matched to requests by rid. Pushes come to listeners registered with `on`, by their
 * `t`, with the connection events `disconnected`, `reconnected` and `resume_failed`.
 * After a close that allows it (PROTOCOL.md 15) the client reconnects with
 * exponential back-off, trying the fallback URLs in turn, and signs in again with
 * its token; requests made meanwhile wait for the new session.
 */
import { PROTOCOL_VERSION } from "./version.js";
import { decodeServerMessage, encodeRequest } from "./codec.js";
import { ClientClosed, ConnectionLost, ParleyError, RequestTimeout, shouldReconnect } from "./errors.js";
import { REPLY_OF } from "./replies.js";

/** @typedef {import("./protocol.js").Requests} Requests */
/** @typedef {import("./protocol.js").Replies} Replies */
/** @typedef {import("./protocol.js").Pushes} Pushes */
/** @typedef {import("./protocol.js").RequestType} RequestType */
/** @typedef {Requests["send_message"]["content"]} MessageContent */

/**
 * @typedef {object} ConnectionEvents
 * @property {{closeCode: number, reason: string, reconnecting: boolean}} disconnected
 * @property {{attempt: number}} reconnected
 * @property {{error: Error}} resume_failed the token no longer signs in: show sign-in
 */
/** @typedef {Pushes & ConnectionEvents} Events */

/**
 * @typedef {object} ClientOptions
 * @property {string[]} [fallbackUrls] other nodes of the same service, tried in turn when reconnecting
 * @property {boolean} [reconnect] reconnect after a transient close (default true)
 * @property {number} [requestTimeout] seconds to wait for a reply (default 30, as the server's deadline)
 * @property {number} [backoffInitial] first reconnect delay in seconds (default 0.1)
 * @property {number} [backoffMax] longest reconnect delay in seconds (default 5)
 * @property {string[]} [subprotocols] protocol versions offered (default ["parley.v1"])
 * @property {typeof WebSocket} [WebSocket] the WebSocket class (default the global one)
 */

const RESUME_TIMEOUT_S = 5;
/** rids stay far below 2^53 - 1, the largest integer a Number holds exactly. */
const MAX_RID = Number.MAX_SAFE_INTEGER;

/**
 * @typedef {object} Waiter
 * @property {RequestType} type
 * @property {(reply: any) => void} resolve
 * @property {(error: Error) => void} reject
 */

/** A promise with its resolve function, to wait for a connection to be ready. */
class Gate {
  constructor() {
    this.open = false;
    /** @type {() => void} */
    this.release = () => {};
    /** @type {Promise<void>} */
    this.opened = new Promise((resolve) => {
      this.release = () => {
        this.open = true;
        resolve();
      };
    });
  }
}

export class ParleyClient {
  /**
   * @param {string} url e.g. `ws://127.0.0.1:8080/` or, behind TLS, `wss://chat.example.com/`
   * @param {ClientOptions} [options]
   */
  constructor(url, options = {}) {
    this.url = url;
    this.fallbackUrls = options.fallbackUrls ?? [];
    this.reconnect = options.reconnect ?? true;
    this.requestTimeout = options.requestTimeout ?? 30;
    this.backoffInitial = options.backoffInitial ?? 0.1;
    this.backoffMax = options.backoffMax ?? 5;
    this.subprotocols = options.subprotocols ?? [PROTOCOL_VERSION];
    const Impl = options.WebSocket ?? globalThis.WebSocket;
    if (!Impl) throw new TypeError("no WebSocket class: pass options.WebSocket");
    this.WebSocketClass = Impl;
    /** @type {string | null} */
    this.userId = null;
    /** @type {number | null} */
    this.platform = null;
    /** @type {string | null} */
    this.token = null;
    /** @type {number | null} */
    this.closeCode = null;
    this.closeReason = "";
    /** Whether the client has stopped for good (closed by its owner or a terminal close). */
    this.closed = false;
    this._rid = 0;
    /** @type {Map<number, Waiter>} */
    this._waiters = new Map();
    /** @type {WebSocket | null} */
    this._ws = null;
    this._ready = new Gate();
    this._stopped = new Gate();
    /** @type {Map<string, Set<(event: any) => void>>} */
    this._listeners = new Map();
  }

  // -- lifetime --------------------------------------------------------------------

  /** Open the first connection (rejects with {@link ConnectionLost} if it fails). */
  async connect() {
    await this._open(this.url);
    this._ready.release();
  }

  /**
   * Close the connection and stop reconnecting.
   * @param {number} [code]
   */
  close(code = 1000) {
    if (this.closed) return;
    this.closed = true;
    const ws = this._ws;
    this._ws = null;
    if (ws) ws.close(code);
    this._failWaiters(new ClientClosed("client closed"));
    this._stopped.release();
  }

  /** Resolves once the client has stopped for good. */
  async waitClosed() {
    await this._stopped.opened;
  }

  /** Whether a connection is up and, if the client had signed in, signed in again. */
  get ready() {
    return this._ready.open && this._ws !== null;
  }

  /**
   * @param {string} url
   * @returns {Promise<WebSocket>}
   */
  _open(url) {
    return new Promise((resolve, reject) => {
      const ws = new this.WebSocketClass(url, this.subprotocols);
      ws.binaryType = "arraybuffer";
      ws.onopen = () => {
        // Wired here, synchronously: a close sent right after the upgrade
        // (PROTOCOL.md 1.2) must find its handler.
        ws.onmessage = (event) => this._onFrame(event.data);
        ws.onclose = (event) => this._onClose(ws, event.code, event.reason);
        this._ws = ws;
        resolve(ws);
      };
      ws.onclose = (event) => reject(new ConnectionLost(event.code, event.reason));
      ws.onerror = () => {}; // a close event follows and says more
    });
  }

  /**
   * @param {WebSocket} ws
   * @param {number} code
   * @param {string} reason
   */
  _onClose(ws, code, reason) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._ready = new Gate();
    this.closeCode = code;
    this.closeReason = reason;
    this._failWaiters(new ConnectionLost(code, reason));
    const again = this.reconnect && shouldReconnect(code) && !this.closed;
    this._emit("disconnected", { closeCode: code, reason, reconnecting: again });
    if (!again) {
      this.closed = true;
      this._stopped.release();
      return;
    }
    void this._reconnect();
  }

  async _reconnect() {
    const urls = [this.url, ...this.fallbackUrls];
    let delay = this.backoffInitial;
    for (let attempt = 1; !this.closed; attempt++) {
      await sleep(delay * (0.5 + Math.random()));
      delay = Math.min(delay * 2, this.backoffMax);
      if (this.closed) return;
      /** @type {WebSocket} */
      let ws;
      try {
        ws = await this._open(urls[attempt % urls.length]);
      } catch {
        continue;
      }
      if (this.closed) {
        ws.close(1000);
        return;
      }
      if (this.token !== null) {
        void this._resume(ws, this.token, attempt);
      } else {
        this._ready.release();
        this._emit("reconnected", { attempt });
      }
      return;
    }
  }

  /**
   * Sign in again on a new connection; requests wait until this is done.
   * @param {WebSocket} ws @param {string} token @param {number} attempt
   */
  async _resume(ws, token, attempt) {
    let delay = this.backoffInitial;
    // A sign-in can be lost when a node of a cluster fails: try until the server
    // answers, for as long as this connection lasts.
    while (ws === this._ws) {
      try {
        const timeout = Math.min(this.requestTimeout, RESUME_TIMEOUT_S);
        this._signedIn(await this._requestOn(ws, "token_login", { token }, timeout));
      } catch (error) {
        if (error instanceof RequestTimeout || error instanceof ConnectionLost) {
          await sleep(delay * (0.5 + Math.random()));
          delay = Math.min(delay * 2, this.backoffMax);
          continue;
        }
        if (ws === this._ws) {
          this.token = null;
          this._ready.release(); // requests now get the server's own answer
          this._emit("resume_failed", { error: /** @type {Error} */ (error) });
        }
        return;
      }
      if (ws === this._ws) {
        this._ready.release();
        this._emit("reconnected", { attempt });
      }
      return;
    }
  }

  /** @param {unknown} data */
  _onFrame(data) {
    if (!(data instanceof ArrayBuffer)) return; // the server sends binary messages only
    /** @type {import("./protocol.js").ServerMessage} */
    let message;
    try {
      message = decodeServerMessage(data);
    } catch (error) {
      console.warn("parley: ignored a server message that is not msgpack", error);
      return;
    }
    if ("rid" in message) {
      const waiter = this._waiters.get(message.rid);
      if (waiter === undefined) {
        if (message.t === "error") console.warn(`parley: error for no request: ${message.name} ${message.message}`);
        return;
      }
      this._waiters.delete(message.rid);
      if (message.t === "error") {
        waiter.reject(new ParleyError(message.code, message.name, message.message));
      } else if (message.t !== REPLY_OF[waiter.type]) {
        waiter.reject(new TypeError(`${waiter.type} was answered ${message.t}`));
      } else {
        waiter.resolve(message);
      }
      return;
    }
    // A push; one whose t this version does not know is passed on as well.
    this._emit(message.t, message);
  }

  /** @param {Error} error */
  _failWaiters(error) {
    const waiters = [...this._waiters.values()];
    this._waiters.clear();
    for (const waiter of waiters) waiter.reject(error);
  }

  // -- requests ----------------------------------------------------------------------

  /**
   * Send a request and wait for its reply.
   * @template {RequestType} T
   * @param {T} type the request's `t`
   * @param {Omit<Requests[T], "t" | "rid">} fields
   * @param {{timeout?: number}} [options] seconds to wait (default `requestTimeout`)
   * @returns {Promise<Replies[(typeof REPLY_OF)[T]]>}
   */
  async request(type, fields, options = {}) {
    const timeout = options.timeout ?? this.requestTimeout;
    const ws = await this._connected(type, timeout);
    return this._requestOn(ws, type, fields, timeout);
  }

  /**
   * @param {string} type @param {number} timeout
   * @returns {Promise<WebSocket>}
   */
  async _connected(type, timeout) {
    const deadline = Date.now() + timeout * 1000;
    for (;;) {
      if (this.closed) throw new ClientClosed("client closed");
      if (this._ready.open && this._ws !== null) return this._ws;
      const left = deadline - Date.now();
      if (left <= 0) throw new RequestTimeout(type, timeout);
      /** @type {ReturnType<typeof setTimeout> | undefined} */
      let timer;
      await Promise.race([
        this._ready.opened,
        this._stopped.opened,
        new Promise((resolve) => {
          timer = setTimeout(resolve, left);
        }),
      ]);
      clearTimeout(timer);
    }
  }

  /**
   * @template {RequestType} T
   * @param {WebSocket} ws @param {T} type @param {Omit<Requests[T], "t" | "rid">} fields
   * @param {number} timeout
   * @returns {Promise<Replies[(typeof REPLY_OF)[T]]>}
   */
  _requestOn(ws, type, fields, timeout) {
    if (this._rid >= MAX_RID) this._rid = 0;
    const rid = ++this._rid;
    const frame = encodeRequest({ ...fields, t: type, rid });
    return new Promise((resolve, reject) => {
      if (ws.readyState !== ws.OPEN) {
        reject(new ConnectionLost(this.closeCode, this.closeReason));
        return;
      }
      const timer = setTimeout(() => {
        this._waiters.delete(rid);
        reject(new RequestTimeout(type, timeout));
      }, timeout * 1000);
      this._waiters.set(rid, {
        type,
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      ws.send(frame);
    });
  }

  /**
   * Send bytes as they are, as one binary message (for tests of the server's checks).
   * @param {Uint8Array} frame
   */
  async sendRaw(frame) {
    (await this._connected("raw frame", this.requestTimeout)).send(frame);
  }

  // -- events --------------------------------------------------------------------------

  /**
   * Call `listener` for every push or connection event of `type`.
   * @template {keyof Events & string} K
   * @param {K} type
   * @param {(event: Events[K]) => void} listener
   * @returns {() => void} removes the listener
   */
  on(type, listener) {
    let set = this._listeners.get(type);
    if (!set) this._listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /**
   * The next event of `type`.
   * @template {keyof Events & string} K
   * @param {K} type
   * @param {number} [timeout] seconds (default 10)
   * @returns {Promise<Events[K]>}
   */
  nextEvent(type, timeout = 10) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new RequestTimeout(`a ${type} event`, timeout));
      }, timeout * 1000);
      const off = this.on(type, (event) => {
        clearTimeout(timer);
        off();
        resolve(event);
      });
    });
  }

  /** @param {string} type @param {unknown} event */
  _emit(type, event) {
    for (const listener of [...(this._listeners.get(type) ?? [])]) {
      try {
        listener(event);
      } catch (error) {
        console.error(`parley: a ${type} listener failed`, error);
      }
    }
  }

  // -- accounts --------------------------------------------------------------------------

  /**
   * @param {string} userId @param {string} password
   * @param {{nickname?: string, faceUrl?: string, ex?: string}} [profile]
   */
  async register(userId, password, profile = {}) {
    return this.request("register", {
      user_id: userId,
      password,
      nickname: profile.nickname,
      face_url: profile.faceUrl,
      ex: profile.ex,
    });
  }

  /**
   * @param {string} userId @param {string} password
   * @param {Requests["login"]["platform"]} [platform] default 5, the web
   */
  async login(userId, password, platform = 5) {
    return this._signedIn(await this.request("login", { user_id: userId, password, platform }));
  }

  /** @param {string} token from an earlier `login_ok` (e.g. another tab's) */
  async loginWithToken(token) {
    return this._signedIn(await this.request("token_login", { token }));
  }

  /** @param {Replies["login_ok"]} reply */
  _signedIn(reply) {
    this.userId = reply.user_id;
    this.platform = reply.platform;
    this.token = reply.token;
    return reply;
  }

  /** Revoke the token and end the session; the client does not reconnect. */
  async logout() {
    this.token = null;
    await this.request("logout", {});
  }

  /**
   * Change the password; keeps (and returns) the new token.
   * @param {string} oldPassword @param {string} newPassword
   */
  async changePassword(oldPassword, newPassword) {
    const reply = await this.request("change_password", { old_password: oldPassword, new_password: newPassword });
    this.token = reply.token;
    return reply.token;
  }

  // -- messages ----------------------------------------------------------------------------

  /**
   * Send to a user or a group. Retrying with the same `clientMsgId` is safe.
   * @param {MessageContent} content
   * @param {{toUserId?: string, groupId?: string, clientMsgId?: string, ex?: string}} to
   */
  async sendMessage(content, to) {
    return this.request("send_message", {
      client_msg_id: to.clientMsgId ?? newClientMsgId(),
      content,
      to_user_id: to.toUserId ?? null,
      group_id: to.groupId ?? null,
      ex: to.ex,
    });
  }

  /**
   * @param {string} text
   * @param {{toUserId?: string, groupId?: string, clientMsgId?: string}} to
   */
  async sendText(text, to) {
    return this.sendMessage({ type: 101, text }, to);
  }

  /**
   * Tell the peer this user is typing; not stored (its `message_sent` has seq 0).
   * @param {{toUserId?: string, groupId?: string}} to
   */
  async sendTyping(to) {
    return this.sendMessage({ type: 113, text: "" }, to);
  }

  /**
   * Mark a conversation read up to `seq` (0: up to its max seq).
   * @param {string} conversationId @param {number} [seq]
   */
  async markRead(conversationId, seq = 0) {
    await this.request("mark_read", { conversation_id: conversationId, seq });
  }
}

/** A new client message id (the id a send is retried with). */
export function newClientMsgId() {
  return globalThis.crypto.randomUUID().replaceAll("-", "");
}

/** @param {number} seconds */
function sleep(seconds) {
  return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}
