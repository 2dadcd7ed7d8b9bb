/**
 * Local copies of synced lists, kept current with incremental sync (PROTOCOL.md 6.10,
 * 13.2): after `apply`, the copy equals the server's list at (versionId, version).
 */

/**
 * @template Item
 * @typedef {object} SyncAnswer
 * @property {"equal" | "full" | "incremental"} kind
 * @property {string} version_id
 * @property {number} version
 * @property {Item[]} inserts
 * @property {Item[]} updates
 * @property {string[]} deletes
 */

/** @template Item */
export class ListCopy {
  /** @param {(item: Item) => string} keyOf the id an item is deleted by */
  constructor(keyOf) {
    this.keyOf = keyOf;
    this.versionId = "";
    this.version = 0;
    /** @type {Map<string, Item>} */
    this.items = new Map();
  }

  /** @param {SyncAnswer<Item>} answer */
  apply(answer) {
    if (answer.kind === "full") {
      this.items = new Map(answer.inserts.map((item) => [this.keyOf(item), item]));
    } else if (answer.kind === "incremental") {
      for (const item of [...answer.inserts, ...answer.updates]) this.items.set(this.keyOf(item), item);
      for (const id of answer.deletes) this.items.delete(id);
    }
    this.versionId = answer.version_id;
    this.version = answer.version;
  }

  /** What to send to bring the copy up to date. */
  get since() {
    return { version_id: this.versionId, version: this.version };
  }
}

/** @extends {ListCopy<import("./protocol.js").FriendInfo>} */
export class FriendListCopy extends ListCopy {
  constructor() {
    super((friend) => friend.user_id);
  }
}

/** @extends {ListCopy<import("./protocol.js").JoinedGroup>} */
export class JoinedGroupsCopy extends ListCopy {
  constructor() {
    super((entry) => entry.group.group_id);
  }
}

/** @extends {ListCopy<import("./protocol.js").GroupMember>} */
export class GroupMembersCopy extends ListCopy {
  /** @param {string} groupId */
  constructor(groupId) {
    super((member) => member.user_id);
    this.groupId = groupId;
  }
}

/** The conversation settings (`sync_conversations`). @extends {ListCopy<import("./protocol.js").ConversationInfo>} */
export class ConversationListCopy extends ListCopy {
  constructor() {
    super((info) => info.conversation_id);
  }
}
