/** Conversation ids as the server forms them (PROTOCOL.md 8). */

/**
 * The single-chat conversation of two users: `si_<a>_<b>` with the ids sorted.
 * @param {string} a @param {string} b
 */
export function singleConversationId(a, b) {
  return a < b ? `si_${a}_${b}` : `si_${b}_${a}`;
}

/** @param {string} groupId */
export function groupConversationId(groupId) {
  return `sg_${groupId}`;
}

/**
 * What a conversation id names.
 * @param {string} id
 * @returns {{kind: "single", userIds: [string, string]} | {kind: "group", groupId: string} | null}
 */
export function parseConversationId(id) {
  if (id.startsWith("sg_") && id.length > 3) return { kind: "group", groupId: id.slice(3) };
  const parts = id.split("_");
  if (parts.length === 3 && parts[0] === "si" && parts[1] && parts[2]) {
    return { kind: "single", userIds: [parts[1], parts[2]] };
  }
  return null;
}
