/**
 * Parley's web client: sign-in, then the conversation list, the chat view, friends
 * and groups, on the JavaScript SDK (vendor/parley, copied from client-js/src).
 *
 * The token is kept in localStorage, so every tab of this browser signs in with it
 * (`token_login`); the server's default policy keeps all of them signed in.
 */
import { MessageTracker, ParleyClient } from "@parley/client";
import { Chat } from "./chat.js";
import { byId, describe, guarded, onSubmit, setStatus, valueOf } from "./dom.js";
import { People } from "./people.js";

const TOKEN_KEY = "parley.token";
const SERVER_KEY = "parley.server";
const PLATFORM_WEB = 5;

/** The WebSocket address: ?server=, then this browser's choice, the page's meta, the default. */
function serverUrl() {
  const chosen = new URLSearchParams(location.search).get("server") || localStorage.getItem(SERVER_KEY);
  if (chosen) return chosen;
  const meta = document.querySelector('meta[name="parley-server"]')?.getAttribute("content");
  if (meta) return meta;
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.hostname || "127.0.0.1"}:8080/`;
}

/** @type {{client: ParleyClient, chat: Chat, people: People} | null} */
let session = null;

/**
 * Connect, sign in with `signIn`, and show the application.
 * @param {(client: ParleyClient) => Promise<unknown>} signIn
 */
async function start(signIn) {
  setStatus("Connecting…");
  const client = new ParleyClient(serverUrl());
  try {
    await client.connect();
    await signIn(client);
  } catch (error) {
    client.close();
    throw error;
  }
  localStorage.setItem(TOKEN_KEY, /** @type {string} */ (client.token));
  const tracker = new MessageTracker(client);
  const people = new People(client);
  const chat = new Chat(client, tracker, (groupId) => people.groupName(groupId));
  people.chat = chat;
  session = { client, chat, people };

  client.on("message", (push) => void guarded(async () => chat.show(await tracker.onPush(push.message))));
  client.on("typing", (push) => chat.onTyping(push));
  client.on("read_receipt", (push) => chat.onReadReceipt(push));
  client.on("read_state", () => chat.refreshListSoon());
  client.on("conversation_changed", () => chat.refreshListSoon());
  client.on("notification", (push) => void guarded(() => people.onNotification(push.type)));
  client.on("disconnected", (event) => {
    if (event.reconnecting) setStatus(`Connection lost (code ${event.closeCode}); reconnecting…`, true);
    else if (event.closeCode === 4500 || event.closeCode === 4501) signedOut(`Signed out: ${event.reason}`);
    else if (event.closeCode !== 4502) signedOut(`Disconnected: ${event.reason || "connection closed"} (code ${event.closeCode})`);
  });
  client.on("reconnected", () => {
    setStatus("Reconnected");
    void guarded(async () => {
      chat.show(await tracker.catchUp());
      await Promise.all([people.refreshAll(), chat.refreshList()]);
    });
  });
  client.on("resume_failed", ({ error }) => {
    client.close();
    signedOut(`Please sign in again: ${describe(error)}`);
  });

  byId("signin-view").hidden = true;
  byId("app-view").hidden = false;
  const me = byId("whoami");
  me.textContent = `Signed in as ${client.userId}`;
  me.hidden = false;
  byId("signout").hidden = false;
  byId("skip").hidden = false;
  await tracker.catchUp();
  await Promise.all([people.refreshAll(), chat.refreshList()]);
  setStatus(`Signed in as ${client.userId}`);
  byId("newchat-user").focus();
}

/** @param {string} message */
function signedOut(message) {
  session = null;
  localStorage.removeItem(TOKEN_KEY);
  byId("app-view").hidden = true;
  byId("signin-view").hidden = false;
  byId("whoami").hidden = true;
  byId("signout").hidden = true;
  byId("skip").hidden = true;
  setStatus(message, true);
  byId("signin-user").focus();
}

function wire() {
  onSubmit("signin-form", (form) =>
    start((client) => client.login(valueOf("signin-user"), /** @type {HTMLInputElement} */ (form.elements.namedItem("password")).value, PLATFORM_WEB)),
  );
  onSubmit("signup-form", (form) => {
    const user = valueOf("signup-user");
    const password = /** @type {HTMLInputElement} */ (form.elements.namedItem("password")).value;
    return start(async (client) => {
      await client.register(user, password, { nickname: valueOf("signup-nickname") });
      await client.login(user, password, PLATFORM_WEB);
    });
  });
  onSubmit("server-form", async () => {
    const url = valueOf("server-url");
    if (url) localStorage.setItem(SERVER_KEY, url);
    else localStorage.removeItem(SERVER_KEY);
    setStatus(`Server: ${serverUrl()}`);
  });
  byId("signout").addEventListener("click", () =>
    void guarded(async () => {
      const current = session;
      if (current) {
        await current.client.logout().catch(() => {});
        current.client.close();
      }
      signedOut("Signed out");
    }),
  );
  onSubmit("newchat-form", () => /** @type {NonNullable<typeof session>} */ (session).chat.openWithUser(valueOf("newchat-user")));
  onSubmit("composer", async () => {
    const text = valueOf("composer-text");
    if (text) await session?.chat.send(text);
    byId("composer-text").focus();
  });
  byId("composer-text").addEventListener("input", () => void guarded(async () => session?.chat.typed()));
  byId("older").addEventListener("click", () => void guarded(async () => session?.chat.loadOlder()));
  onSubmit("apply-form", async () => session?.people.applyFriend(valueOf("apply-user")));
  onSubmit("create-group-form", async () =>
    session?.people.createGroup(valueOf("group-name"), valueOf("group-id"), /** @type {any} */ (valueOf("group-policy"))),
  );
  onSubmit("join-group-form", async () => session?.people.joinGroup(valueOf("join-group-id")));
  document.addEventListener("visibilitychange", () => void guarded(async () => session?.chat.markRead()));
}

async function boot() {
  wire();
  /** @type {HTMLInputElement} */ (byId("server-url")).value = localStorage.getItem(SERVER_KEY) ?? "";
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) {
    try {
      await start((client) => client.loginWithToken(token));
      return;
    } catch (error) {
      localStorage.removeItem(TOKEN_KEY);
      setStatus(`Please sign in again: ${describe(error)}`, true);
    }
  } else {
    setStatus("");
  }
  byId("signin-user").focus();
}

void boot();
