// The SDK against real nodes: typed requests and errors, pushes as events, timeouts,
// reconnection to a fallback node with a resumed session, the message tracker and
// the list copies.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";

import {
  ClientClosed,
  ConnectionLost,
  FriendListCopy,
  MessageTracker,
  ParleyClient,
  ParleyError,
  RequestTimeout,
  singleConversationId,
} from "../src/index.js";
import { WebSocketClass, nodeForTests, startNode, startRedis, uniqueUser } from "./node.js";

/** @type {ParleyClient[]} */
const clients = [];

/** A connected client, closed after the test file. @param {string} url @param {import("../src/client.js").ClientOptions} [options] */
async function connect(url, options) {
  const client = new ParleyClient(url, { WebSocket: WebSocketClass, ...options });
  clients.push(client);
  await client.connect();
  return client;
}

/** A client signed in as a new user. @param {string} url @param {string} name */
async function signedIn(url, name) {
  const client = await connect(url);
  const id = uniqueUser(name);
  await client.register(id, "password-1", { nickname: name });
  await client.login(id, "password-1");
  return client;
}

after(() => {
  for (const client of clients) client.close();
});

describe("requests and pushes", () => {
  const running = nodeForTests();

  it("signs in and reads the own profile", async () => {
    const client = await connect(running.node.url);
    const id = uniqueUser("ada");
    const registered = await client.register(id, "password-1", { nickname: "Ada" });
    assert.deepEqual(registered, { t: "registered", user_id: id, rid: registered.rid });
    const ok = await client.login(id, "password-1");
    assert.equal(ok.platform, 5);
    assert.equal(client.token, ok.token);
    const { profile } = await client.request("get_self", {});
    assert.equal(profile.nickname, "Ada");
  });

  it("rejects with the server's typed error and changes nothing", async () => {
    const client = await connect(running.node.url);
    const id = uniqueUser("bo");
    await client.register(id, "password-1");
    await assert.rejects(client.login(id, "wrong-password"), (error) => {
      assert.ok(error instanceof ParleyError);
      assert.equal(error.code, 2001);
      assert.equal(error.errorName, "BAD_CREDENTIALS");
      assert.equal(error.retryable, false);
      return true;
    });
    await assert.rejects(client.request("get_self", {}), { code: 1004 });
    await client.login(id, "password-1");
    await assert.rejects(client.request("set_profile", { nickname: "x".repeat(65) }), { errorName: "INVALID_FIELD" });
    assert.equal((await client.request("get_self", {})).profile.nickname, "");
  });

  it("matches replies by rid when many are in flight", async () => {
    const client = await signedIn(running.node.url, "many");
    const replies = await Promise.all(Array.from({ length: 50 }, () => client.request("ping", {})));
    const rids = replies.map((reply) => reply.rid);
    assert.equal(new Set(rids).size, 50);
    for (const reply of replies) assert.equal(reply.t, "pong");
  });

  it("delivers messages, typing and read receipts as events", async () => {
    const alice = await signedIn(running.node.url, "alice");
    const bob = await signedIn(running.node.url, "bob");
    const bobId = /** @type {string} */ (bob.userId);
    const pushed = bob.nextEvent("message");
    const sent = await alice.sendText("hello bob", { toUserId: bobId });
    assert.equal(sent.conversation_id, singleConversationId(/** @type {string} */ (alice.userId), bobId));
    const { message } = await pushed;
    assert.equal(message.seq, sent.seq);
    assert.deepEqual(message.content, { type: 101, text: "hello bob" });

    const typing = bob.nextEvent("typing");
    const typed = await alice.sendTyping({ toUserId: bobId });
    assert.equal(typed.seq, 0);
    assert.equal((await typing).from_user_id, alice.userId);

    const receipt = alice.nextEvent("read_receipt");
    await bob.markRead(sent.conversation_id);
    assert.equal((await receipt).has_read_seq, sent.seq);
  });

  it("times out a request after its own deadline and drops the late reply", async () => {
    const client = await connect(running.node.url);
    const id = uniqueUser("slow");
    await client.register(id, "password-1");
    // A password check takes the server tens of ms (argon2id): the reply comes late.
    const login = client.request("login", { user_id: id, password: "password-1", platform: 5 }, { timeout: 0.002 });
    await assert.rejects(login, RequestTimeout);
    // The request may still have run (it did here); the late login_ok was dropped.
    for (;;) {
      try {
        assert.equal((await client.request("get_self", {})).profile.user_id, id);
        break;
      } catch (error) {
        assert.ok(error instanceof ParleyError && error.code === 1004, String(error));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  });

  it("ends for good after a terminal close and fails what waits", async () => {
    const client = await signedIn(running.node.url, "leaver");
    const disconnected = client.nextEvent("disconnected");
    await client.logout();
    assert.deepEqual(await disconnected, { closeCode: 4502, reason: "logged out", reconnecting: false });
    await client.waitClosed();
    await assert.rejects(client.request("ping", {}), ClientClosed);
  });

  it("reads a refused protocol version from the close code", async () => {
    const client = new ParleyClient(running.node.url, { WebSocket: WebSocketClass, subprotocols: ["parley.v2"] });
    const disconnected = new Promise((resolve) => client.on("disconnected", resolve));
    await client.connect();
    const event = /** @type {any} */ (await disconnected);
    assert.equal(event.closeCode, 4503);
    assert.match(event.reason, /this server speaks: parley\.v1/);
    assert.equal(event.reconnecting, false);
    assert.equal(client.closed, true);
  });
});

describe("reconnection", () => {
  it("moves to a fallback node with back-off and resumes the session", async () => {
    const redis = await startRedis();
    const first = await startNode({}, { redisUrl: redis.url });
    const second = await startNode({}, { redisUrl: redis.url });
    try {
      const watcher = await signedIn(second.url, "watcher");
      const client = await connect(first.url, { fallbackUrls: [second.url], backoffInitial: 0.05 });
      const id = uniqueUser("mover");
      await client.register(id, "password-1");
      await client.login(id, "password-1");
      /** @type {any[]} */
      const events = [];
      client.on("disconnected", (event) => events.push(event));
      const reconnected = client.nextEvent("reconnected", 30);
      await first.stop(); // closes every session with 1001, going away
      assert.equal((await reconnected).attempt >= 1, true);
      assert.deepEqual(events, [{ closeCode: 1001, reason: "server shutting down", reconnecting: true }]);
      assert.equal(client.ready, true);
      // Signed in again with the token: requests and pushes work on the new node.
      assert.equal((await client.request("get_self", {})).profile.user_id, id);
      const pushed = client.nextEvent("message");
      await watcher.sendText("found you", { toUserId: id });
      assert.equal((await pushed).message.content.type, 101);
    } finally {
      await second.stop();
      await first.stop().catch(() => {});
      await redis.stop();
    }
  });

  it("fails requests in flight with ConnectionLost", async () => {
    const stopping = await startNode();
    const client = await connect(stopping.url, { reconnect: false });
    const pending = client.request("ping", {});
    await stopping.stop();
    await pending.then(
      (reply) => assert.equal(reply.t, "pong"), // answered before the shutdown
      (error) => assert.ok(error instanceof ConnectionLost),
    );
    await client.waitClosed();
  });
});

describe("staying in step", () => {
  const running = nodeForTests();

  it("the tracker pulls the seqs a push skipped, and catches up after being away", async () => {
    const alice = await signedIn(running.node.url, "talker");
    const bobId = uniqueUser("listener");
    const bob = await connect(running.node.url);
    await bob.register(bobId, "password-1");
    await bob.login(bobId, "password-1");
    const conversation = singleConversationId(/** @type {string} */ (alice.userId), bobId);
    const tracker = new MessageTracker(bob);
    const firstPush = bob.nextEvent("message");
    await alice.sendText("one", { toUserId: bobId });
    assert.deepEqual((await tracker.onPush((await firstPush).message)).map((m) => m.seq), [1]);

    // Bob goes away; two messages come while he is gone.
    const token = /** @type {string} */ (bob.token);
    bob.close();
    await alice.sendText("two", { toUserId: bobId });
    await alice.sendText("three", { toUserId: bobId });
    const back = await connect(running.node.url);
    await back.loginWithToken(token);
    const again = new MessageTracker(back, Object.fromEntries(tracker.lastSeqs));
    const fourth = back.nextEvent("message");
    await alice.sendText("four", { toUserId: bobId });
    const shown = await again.onPush((await fourth).message);
    assert.deepEqual(shown.map((m) => [m.seq, /** @type {any} */ (m.content).text]), [[2, "two"], [3, "three"], [4, "four"]]);
    assert.deepEqual(await again.onPush((await fourth).message), [], "a duplicate is dropped");

    await alice.sendText("five", { toUserId: bobId }); // pushed, but not given to the tracker
    const caughtUp = await again.catchUp();
    assert.deepEqual(caughtUp.map((m) => m.seq), [5]);
    assert.equal(again.lastSeqs.get(conversation), 5);
  });

  it("the friend list copy equals the server's list after each sync", async () => {
    const me = await signedIn(running.node.url, "social");
    const copy = new FriendListCopy();
    const friends = [];
    for (const name of ["f1", "f2", "f3"]) {
      const friend = await signedIn(running.node.url, name);
      await me.request("apply_friend", { to_user_id: /** @type {string} */ (friend.userId) });
      await friend.request("respond_friend_application", { from_user_id: /** @type {string} */ (me.userId), accept: true });
      friends.push(friend);
      copy.apply(await me.request("sync_friends", copy.since));
    }
    assert.equal(copy.items.size, 3);
    await me.request("delete_friend", { friend_id: /** @type {string} */ (friends[1].userId) });
    const answer = await me.request("sync_friends", copy.since);
    assert.equal(answer.kind, "incremental");
    copy.apply(answer);
    const server = await me.request("get_friends", { limit: 100 });
    assert.deepEqual(
      [...copy.items.keys()].sort(),
      server.items.map((f) => f.user_id).sort(),
    );
    assert.equal((await me.request("sync_friends", copy.since)).kind, "equal");
  });
});
