"""Redis key names. Every key starts with the configured prefix and carries a
hash tag naming its entity, so all keys of one entity share a Redis Cluster
slot and a Lua script may touch them together."""

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

    def node_tag(self, node_id: str) -> str:
        """Base of a node's keys."""
        return f"{self.prefix}{{n:{node_id}}}"

    def node_pending(self, node_id: str) -> str:
        """Set: sources whose steps on this node may have left follow-ups to apply
        (storage/followups.py)."""
        return f"{self.node_tag(node_id)}:pending"

    def node(self, node_id: str) -> str:
        """String with a TTL: present while the node is alive."""
        return f"{self.prefix}node:{node_id}"

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

    def token_secret(self) -> str:
        return f"{self.prefix}token_secret"
