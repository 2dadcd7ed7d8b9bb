/** The protocol version this SDK speaks, offered as the WebSocket subprotocol. */
export const PROTOCOL_VERSION = "parley.v1";
