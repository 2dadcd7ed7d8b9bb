"""Redis key names and pub/sub channels. Every one starts with the configured prefix
and carries a hash tag naming its entity (``{u:<user>}``, ``{g:<group>}``,
``{c:<conversation>}``, ``{n:<node>}``, ``{cluster}`` for what the nodes share), so
all keys of one entity share a Redis Cluster slot and a Lua script may touch them
together. The few without a tag (the token secret, per-address login counters) are
only ever used one key per command."""

from __future__ import annotations


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def user_tag(self, user_id: str) -> str:
        return f"{self.prefix}{{u:{user_id}}}"

    def group_tag(self, group_id: str) -> str:
        """Base of a group's keys."""
        return f"{self.prefix}{{g:{group_id}}}"

    def conversation_tag(self, conversation_id: str) -> str:
        """Base of a conversation's keys (messages, seq, client msg ids)."""
        return f"{self.prefix}{{c:{conversation_id}}}"

    def account(self, user_id: str) -> str:
        """Hash: password hash and profile fields of one user."""
        return f"{self.user_tag(user_id)}:account"

    def tokens(self, user_id: str) -> str:
        """Hash: token id -> "platform:expires_at_ms" for every valid token."""
        return f"{self.user_tag(user_id)}:tokens"

    def presence(self, user_id: str) -> str:
        """Hash: session id -> "platform:node id:token id" for every live session."""
        return f"{self.user_tag(user_id)}:presence"

    def lease(self, kind: str, entity_id: str) -> str:
        """String with a time limit: the node whose actor owns a user or a group."""
        tag = self.group_tag(entity_id) if kind == "group" else self.user_tag(entity_id)
        return f"{tag}:owner"

    def group_members(self, group_id: str) -> str:
        """Hash: member user id -> member record."""
        return f"{self.group_tag(group_id)}:members"

    def joined_groups(self, user_id: str) -> str:
        """Sorted set: the groups a user is a member of."""
        return f"{self.user_tag(user_id)}:groups"

    def left_groups(self, user_id: str) -> str:
        """Hash: group id -> the conversation's max seq when the user left it."""
        return f"{self.user_tag(user_id)}:groups:left"

    # -- nodes: each node's keys in its own slot, ``{n:<id>}`` ---------------------

    def node(self, node_id: str) -> str:
        """String with a TTL: the record of the running instance that holds the id,
        present while it is alive."""
        return f"{self.prefix}{{n:{node_id}}}"

    def node_sessions(self, node_id: str) -> str:
        """Set of "user id<TAB>session id": the sessions the node holds."""
        return f"{self.node(node_id)}:sessions"

    def node_pending(self, node_id: str) -> str:
        """Set: sources whose steps on this node may have left follow-ups to apply
        (storage/followups.py)."""
        return f"{self.node(node_id)}:pending"

    def node_inbox(self, node_id: str) -> str:
        """Pub/sub channel: envelopes for the node (pushes, forwarded commands)."""
        return f"{self.node(node_id)}:inbox"

    # -- what every node shares: one slot, ``{cluster}`` --------------------------

    def nodes(self) -> str:
        """Sorted set: node id -> ms of its last heartbeat, for every known node."""
        return f"{self.prefix}{{cluster}}:nodes"

    def cluster_fingerprint(self) -> str:
        """Hash: the settings every node must share (actors.cluster.identity)."""
        return f"{self.prefix}{{cluster}}:fingerprint"

    def broadcast_channel(self) -> str:
        """Pub/sub channel every node listens on (a node joining or leaving)."""
        return f"{self.prefix}{{cluster}}:broadcast"

    def login_failures_user(self, user_id: str) -> str:
        return f"{self.user_tag(user_id)}:login_failures"

    def login_failures_address(self, address: str) -> str:
        """Failed logins for existing user ids from one client address."""
        return f"{self.prefix}login_failures:addr:{address}"

    def login_failures_unknown(self, address: str) -> str:
        """Failed logins for user ids that have no account, from one client address."""
        return f"{self.prefix}login_failures:unknown:{address}"

    def send_bucket(self, user_id: str) -> str:
        """Hash (tokens, at): the token bucket of the messages a user sends."""
        return f"{self.user_tag(user_id)}:send_bucket"

    def layout(self) -> str:
        """String: the data layout of the store (storage/layout.py)."""
        return f"{self.prefix}{{cluster}}:layout"

    def token_secret(self) -> str:
        return f"{self.prefix}token_secret"
