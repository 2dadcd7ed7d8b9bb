/** The conversation list and the chat view. */
import { groupConversationId, parseConversationId, singleConversationId } from "@parley/client";
import { button, byId, el, guarded } from "./dom.js";

/** @typedef {import("@parley/client").ParleyClient} ParleyClient */
/** @typedef {import("@parley/client").MessageTracker} MessageTracker */
/** @typedef {import("../client-js/src/protocol.js").ChatMessage} ChatMessage */

const PAGE = 30;
const TYPING_SHOWN_MS = 4000;
const TYPING_EVERY_MS = 3000;

/**
 * @typedef {object} Open
 * @property {string} id conversation id
 * @property {string} title
 * @property {{toUserId?: string, groupId?: string}} to
 * @property {number} oldest lowest seq shown (for paging back)
 * @property {number} newest highest seq shown
 */

export class Chat {
  /**
   * @param {ParleyClient} client @param {MessageTracker} tracker
   * @param {(groupId: string) => string} groupName
   */
  constructor(client, tracker, groupName) {
    this.client = client;
    this.tracker = tracker;
    this.groupName = groupName;
    /** @type {Open | null} */
    this.open = null;
    this.lastTypingSent = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.typingTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.refreshTimer = undefined;
    this.messages = byId("messages");
  }

  /** The conversation list with unread counts, newest first. */
  async refreshList() {
    const { items } = await this.client.request("get_conversations", { limit: 100 });
    const list = byId("conversations");
    list.replaceChildren(
      ...items.map((view) => {
        const title = this.titleOf(view.info.conversation_id);
        const unread = view.unread_count;
        const label = unread ? `${title}, ${unread} unread` : title;
        const open = button(label, () => this.openConversation(view.info.conversation_id), { "aria-label": label });
        open.replaceChildren(el("span", {}, title), ...(unread ? [el("span", { class: "unread", "aria-hidden": "true" }, String(unread))] : []));
        const item = el("li", { "data-conversation": view.info.conversation_id }, open);
        if (this.open?.id === view.info.conversation_id) item.setAttribute("aria-current", "true");
        return item;
      }),
    );
  }

  /** Refresh the list soon (several pushes in a row cost one request). */
  refreshListSoon() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => void guarded(() => this.refreshList()), 150);
  }

  /** @param {string} conversationId */
  titleOf(conversationId) {
    const parsed = parseConversationId(conversationId);
    if (parsed?.kind === "group") return this.groupName(parsed.groupId);
    if (parsed?.kind === "single") return parsed.userIds.find((id) => id !== this.client.userId) ?? parsed.userIds[0];
    return conversationId;
  }

  /** @param {string} userId */
  async openWithUser(userId) {
    await this.openConversation(singleConversationId(/** @type {string} */ (this.client.userId), userId));
  }

  /** @param {string} groupId */
  async openGroup(groupId) {
    await this.openConversation(groupConversationId(groupId));
  }

  /** Show the newest page of a conversation and mark it read. @param {string} id */
  async openConversation(id) {
    const parsed = parseConversationId(id);
    if (!parsed) throw new Error(`not a conversation id: ${id}`);
    const to = parsed.kind === "group" ? { groupId: parsed.groupId } : { toUserId: this.titleOf(id) };
    // Until the new page is shown nothing can be sent (it would go to the old one).
    this.open = null;
    byId("composer").hidden = true;
    const page = await this.client.request("get_history", { conversation_id: id, limit: PAGE });
    const items = [...page.items].reverse();
    this.open = { id, title: this.titleOf(id), to, oldest: items[0]?.seq ?? 0, newest: items.at(-1)?.seq ?? 0 };
    byId("chat-title").textContent = this.open.title;
    this.messages.replaceChildren(...items.map((message) => this.render(message)));
    byId("older").hidden = page.is_end || items.length === 0;
    byId("typing").textContent = "";
    byId("receipt").textContent = "";
    byId("composer").hidden = false;
    this.messages.scrollTop = this.messages.scrollHeight;
    for (const item of byId("conversations").children) {
      item.toggleAttribute("aria-current", item.getAttribute("data-conversation") === id);
    }
    await this.markRead();
  }

  /** The page before the oldest shown. */
  async loadOlder() {
    const open = this.open;
    if (!open || open.oldest <= 1) return;
    const page = await this.client.request("get_history", { conversation_id: open.id, before_seq: open.oldest, limit: PAGE });
    const items = [...page.items].reverse();
    if (items.length) open.oldest = items[0].seq;
    else open.oldest = Math.max(1, open.oldest - PAGE);
    const first = this.messages.firstElementChild;
    this.messages.prepend(...items.map((message) => this.render(message)));
    byId("older").hidden = page.is_end;
    if (first instanceof HTMLElement) first.scrollIntoView({ block: "start" });
  }

  async markRead() {
    if (this.open && document.visibilityState !== "hidden") {
      await this.client.markRead(this.open.id);
      this.refreshListSoon();
    }
  }

  /** @param {string} text */
  async send(text) {
    const open = this.open;
    if (!open) throw new Error("open a conversation first");
    const sent = await this.client.sendText(text, open.to);
    const skipped = await this.tracker.onSent(sent.conversation_id, sent.seq);
    /** @type {ChatMessage} */
    const mine = {
      conversation_id: sent.conversation_id,
      session_type: open.to.groupId ? 3 : 1,
      seq: sent.seq,
      server_msg_id: sent.server_msg_id,
      client_msg_id: sent.client_msg_id,
      send_id: /** @type {string} */ (this.client.userId),
      recv_id: open.to.groupId ?? open.to.toUserId ?? "",
      send_time: sent.send_time,
      content: { type: 101, text },
      ex: "",
    };
    this.show([...skipped, mine]);
    this.refreshListSoon();
  }

  /** Tell the peer I am typing, at most every few seconds. */
  async typed() {
    const open = this.open;
    if (!open || Date.now() - this.lastTypingSent < TYPING_EVERY_MS) return;
    this.lastTypingSent = Date.now();
    await this.client.sendTyping(open.to);
  }

  /** Messages from the tracker (pushed, or pulled to fill a gap). @param {ChatMessage[]} messages */
  show(messages) {
    let mine = false;
    let theirs = false;
    for (const message of messages) {
      if (message.conversation_id !== this.open?.id || message.seq <= this.open.newest) continue;
      this.open.newest = message.seq;
      if (message.content.type === 111) {
        this.revoke(/** @type {any} */ (message.content).revoked_seq);
        continue;
      }
      this.messages.append(this.render(message));
      if (message.send_id === this.client.userId) mine = true;
      else theirs = true;
    }
    if (mine || theirs) this.messages.scrollTop = this.messages.scrollHeight;
    if (theirs) {
      byId("typing").textContent = "";
      void guarded(() => this.markRead());
    }
    this.refreshListSoon();
  }

  /** @param {number} seq */
  revoke(seq) {
    const item = this.messages.querySelector(`li[data-seq="${seq}"]`);
    if (item) item.lastChild?.replaceWith("(message revoked)");
  }

  /** @param {import("../client-js/src/protocol.js").Typing} push */
  onTyping(push) {
    if (push.conversation_id !== this.open?.id || push.from_user_id === this.client.userId) return;
    const line = byId("typing");
    line.textContent = `${push.from_user_id} is typing…`;
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => {
      line.textContent = "";
    }, TYPING_SHOWN_MS);
  }

  /** @param {import("../client-js/src/protocol.js").ReadReceipt} push */
  onReadReceipt(push) {
    if (push.conversation_id !== this.open?.id) return;
    for (const item of this.messages.querySelectorAll("li.mine")) {
      if (Number(item.getAttribute("data-seq")) <= push.has_read_seq && !item.classList.contains("read")) {
        item.classList.add("read");
        item.querySelector(".meta")?.append(" · read");
      }
    }
    byId("receipt").textContent = `Read by ${push.reader_user_id} up to message ${push.has_read_seq}`;
  }

  /** @param {ChatMessage} message */
  render(message) {
    const mine = message.send_id === this.client.userId;
    const time = new Date(message.send_time).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return el(
      "li",
      { "data-seq": String(message.seq), class: mine ? "mine" : "theirs" },
      el("span", { class: "meta" }, `${mine ? "me" : message.send_id} · ${time}`),
      textOf(message.content),
    );
  }
}

/** @param {ChatMessage["content"]} content */
function textOf(content) {
  switch (content.type) {
    case 101:
    case 106:
    case 114:
      return content.text;
    case 102:
      return "[picture]";
    case 103:
      return "[voice message]";
    case 104:
      return "[video]";
    case 105:
      return `[file ${content.name}]`;
    case 108:
      return `[contact ${content.user_id}]`;
    case 109:
      return `[location ${content.latitude}, ${content.longitude}]`;
    case 111:
      return "(message revoked)";
    default:
      return "[a message this client cannot show]";
  }
}

