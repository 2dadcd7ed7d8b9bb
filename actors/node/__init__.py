"""The node's WebSocket side: the gateway, one connection per session, the hub of
live sessions, and the routing of each command to the actor that owns it."""
