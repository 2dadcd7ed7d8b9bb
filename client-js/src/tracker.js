/**
 * Per-conversation seq tracking for a device: no message missed, none twice
 * (PROTOCOL.md 13.3). Remembers the highest seq held in each conversation, pulls
 * what is missing whenever a push skips ahead, and brings every conversation up to
 * date with {@link MessageTracker#catchUp} (after signing in and every reconnect).
 */

/** @typedef {import("./protocol.js").ChatMessage} ChatMessage */

const PAGE = 100;

export class MessageTracker {
  /**
   * @param {import("./client.js").ParleyClient} client
   * @param {Record<string, number>} [lastSeqs] persisted state from an earlier run
   */
  constructor(client, lastSeqs = {}) {
    this.client = client;
    /** Highest seq held per conversation (persist it with the messages). @type {Map<string, number>} */
    this.lastSeqs = new Map(Object.entries(lastSeqs));
  }

  /**
   * The messages to show for a pushed one, in seq order: those it skipped over
   * (pulled), then itself. Empty if the device already has it.
   * @param {ChatMessage} message
   * @returns {Promise<ChatMessage[]>}
   */
  async onPush(message) {
    const id = message.conversation_id;
    const last = this.lastSeqs.get(id);
    if (last !== undefined && message.seq <= last) return [];
    /** @type {ChatMessage[]} */
    let missing = [];
    if (last !== undefined && message.seq > last + 1) {
      missing = await this.pull(id, last + 1, message.seq - 1);
    }
    this.lastSeqs.set(id, Math.max(message.seq, this.lastSeqs.get(id) ?? 0));
    return [...missing, message];
  }

  /**
   * Record this device's own send (`message_sent`): it gets no push for it. A seq
   * of 0 (typing) is not tracked. Returns the messages the reply skipped over.
   * @param {string} conversationId @param {number} seq
   * @returns {Promise<ChatMessage[]>}
   */
  async onSent(conversationId, seq) {
    if (seq === 0) return [];
    const last = this.lastSeqs.get(conversationId);
    if (last !== undefined && seq <= last) return [];
    const missing = last !== undefined && seq > last + 1 ? await this.pull(conversationId, last + 1, seq - 1) : [];
    this.lastSeqs.set(conversationId, Math.max(seq, this.lastSeqs.get(conversationId) ?? 0));
    return missing;
  }

  /**
   * Everything newer than what the device holds in every conversation it knows of,
   * oldest first per conversation. Conversations never seen start at their current
   * max seq (load their history on demand).
   * @returns {Promise<ChatMessage[]>}
   */
  async catchUp() {
    /** @type {ChatMessage[]} */
    const found = [];
    const { conversations } = await this.client.request("get_max_seqs", {});
    for (const seqs of conversations) {
      const id = seqs.conversation_id;
      const last = this.lastSeqs.get(id);
      if (last === undefined) {
        this.lastSeqs.set(id, seqs.max_seq);
      } else if (seqs.max_seq > last) {
        found.push(...(await this.pull(id, last + 1, seqs.max_seq)));
        this.lastSeqs.set(id, Math.max(seqs.max_seq, this.lastSeqs.get(id) ?? 0));
      }
    }
    return found;
  }

  /**
   * @param {string} conversationId @param {number} first @param {number} last
   * @returns {Promise<ChatMessage[]>}
   */
  async pull(conversationId, first, last) {
    /** @type {ChatMessage[]} */
    const pulled = [];
    for (let start = first; start <= last; start += PAGE) {
      const page = await this.client.request("pull_messages", {
        conversation_id: conversationId,
        from_seq: start,
        to_seq: last,
        limit: PAGE,
      });
      pulled.push(...page.items);
    }
    return pulled;
  }
}
