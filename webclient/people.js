/** Friends (requests, accepting, the list) and groups (creating, joining, members). */
import { FriendListCopy, JoinedGroupsCopy } from "@parley/client";
import { button, byId, el, setStatus } from "./dom.js";

/** @typedef {import("@parley/client").ParleyClient} ParleyClient */
/** @typedef {import("./chat.js").Chat} Chat */

const ROLES = /** @type {Record<number, string>} */ ({ 100: "owner", 60: "admin", 20: "member" });

export class People {
  /** @param {ParleyClient} client */
  constructor(client) {
    this.client = client;
    this.friends = new FriendListCopy();
    this.groups = new JoinedGroupsCopy();
    /** @type {Chat | null} */
    this.chat = null;
    /** @type {string | null} the group whose members are shown */
    this.membersOf = null;
  }

  /** @param {string} groupId */
  groupName(groupId) {
    return this.groups.items.get(groupId)?.group.name || groupId;
  }

  async refreshAll() {
    await Promise.all([this.refreshFriends(), this.refreshFriendRequests(), this.refreshGroups(), this.refreshGroupRequests()]);
  }

  async refreshFriends() {
    this.friends.apply(await this.client.request("sync_friends", this.friends.since));
    const friends = [...this.friends.items.values()].sort((a, b) => a.user_id.localeCompare(b.user_id));
    byId("friends").replaceChildren(
      ...friends.map((friend) =>
        el("li", {}, button(`Chat with ${friend.remark || friend.user_id}`, () => this.openChat(friend.user_id))),
      ),
    );
  }

  async refreshFriendRequests() {
    const { items } = await this.client.request("get_friend_applications", { direction: "received", limit: 50 });
    byId("friend-requests").replaceChildren(
      ...items
        .filter((application) => application.state === 0)
        .map((application) => {
          const from = application.from_user_id;
          const answer = /** @param {boolean} accept */ (accept) => async () => {
            await this.client.request("respond_friend_application", { from_user_id: from, accept });
            setStatus(accept ? `${from} is now a friend` : `Declined ${from}'s request`);
            await Promise.all([this.refreshFriendRequests(), this.refreshFriends()]);
          };
          const note = application.message ? `: “${application.message}”` : "";
          return el(
            "li",
            {},
            `${from}${note} `,
            button("Accept", answer(true), { "aria-label": `Accept ${from}` }),
            " ",
            button("Decline", answer(false), { "aria-label": `Decline ${from}` }),
          );
        }),
    );
  }

  /** @param {string} userId */
  async applyFriend(userId) {
    await this.client.request("apply_friend", { to_user_id: userId, message: "" });
    setStatus(`Friend request sent to ${userId}`);
  }

  async refreshGroups() {
    this.groups.apply(await this.client.request("sync_joined_groups", this.groups.since));
    const groups = [...this.groups.items.values()].sort((a, b) => a.group.name.localeCompare(b.group.name));
    byId("groups").replaceChildren(
      ...groups.map(({ group, role_level }) =>
        el(
          "li",
          {},
          button(`${group.name} (${ROLES[role_level] ?? role_level})`, () => this.openGroupChat(group.group_id), {
            "aria-label": `Open group ${group.name}`,
          }),
          " ",
          button("Members", () => this.showMembers(group.group_id), { "aria-label": `Members of ${group.name}` }),
        ),
      ),
    );
    if (this.membersOf && !this.groups.items.has(this.membersOf)) byId("members-panel").hidden = true;
    await this.chat?.refreshList();
  }

  async refreshGroupRequests() {
    const { items } = await this.client.request("get_group_applications", { limit: 50 });
    byId("group-requests").replaceChildren(
      ...items
        .filter((application) => application.state === 0)
        .map((application) => {
          const { group_id: groupId, user_id: userId } = application;
          const answer = /** @param {boolean} accept */ (accept) => async () => {
            await this.client.request("respond_group_application", { group_id: groupId, user_id: userId, accept });
            setStatus(accept ? `${userId} joined ${this.groupName(groupId)}` : `Declined ${userId}`);
            await this.refreshGroupRequests();
            if (this.membersOf === groupId) await this.showMembers(groupId);
          };
          return el(
            "li",
            {},
            `${userId} → ${this.groupName(groupId)} `,
            button("Accept", answer(true), { "aria-label": `Accept ${userId} into ${this.groupName(groupId)}` }),
            " ",
            button("Decline", answer(false), { "aria-label": `Decline ${userId}` }),
          );
        }),
    );
  }

  /**
   * @param {string} name @param {string} groupId empty: the server picks one
   * @param {"direct" | "approval" | "invite_only"} policy
   */
  async createGroup(name, groupId, policy) {
    const { items } = await this.client.request("create_group", {
      name,
      group_id: groupId || undefined,
      join_policy: policy,
      member_user_ids: [],
    });
    setStatus(`Created group ${items[0].name} (id ${items[0].group_id})`);
    await this.refreshGroups();
    await this.openGroupChat(items[0].group_id);
  }

  /** @param {string} groupId */
  async joinGroup(groupId) {
    const { joined } = await this.client.request("apply_join_group", { group_id: groupId, message: "" });
    setStatus(joined ? `Joined ${groupId}` : `Asked to join ${groupId}; waiting for approval`);
    if (joined) await this.refreshGroups();
  }

  /** @param {string} groupId */
  async showMembers(groupId) {
    const { items } = await this.client.request("get_group_members", { group_id: groupId, limit: 100 });
    this.membersOf = groupId;
    byId("members-title").textContent = `Members of ${this.groupName(groupId)}`;
    byId("members").replaceChildren(
      ...items.map((member) => el("li", {}, `${member.nickname || member.user_id} (${ROLES[member.role_level] ?? member.role_level})`)),
    );
    byId("members-panel").hidden = false;
  }

  /** @param {string} userId */
  async openChat(userId) {
    await this.chat?.openWithUser(userId);
  }

  /** @param {string} groupId */
  async openGroupChat(groupId) {
    await this.chat?.openGroup(groupId);
  }

  /** A notification (PROTOCOL.md 11): refresh what it says changed. @param {number} type */
  async onNotification(type) {
    if (type >= 1201 && type <= 1209) {
      await Promise.all([this.refreshFriends(), this.refreshFriendRequests()]);
    } else if (type >= 1501 && type <= 1520) {
      await Promise.all([this.refreshGroups(), this.refreshGroupRequests()]);
      if (this.membersOf) await this.showMembers(this.membersOf).catch(() => {});
    }
  }
}
