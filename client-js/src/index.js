/** Parley's JavaScript SDK (protocol parley.v1): see client.js and docs/PROTOCOL.md. */
export { ParleyClient, newClientMsgId } from "./client.js";
export { CloseCode, ErrorCode } from "./codes.js";
export { ClientClosed, ConnectionLost, ParleyError, RequestTimeout, shouldReconnect } from "./errors.js";
export { encodeRequest, decodeServerMessage } from "./codec.js";
export { MessageTracker } from "./tracker.js";
export { ConversationListCopy, FriendListCopy, GroupMembersCopy, JoinedGroupsCopy, ListCopy } from "./copies.js";
export { groupConversationId, parseConversationId, singleConversationId } from "./conversation_ids.js";
export { PROTOCOL_VERSION } from "./version.js";
export { REPLY_OF } from "./replies.js";
