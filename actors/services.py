"""What every actor of a node is given: storage, settings, credentials, the trio token."""

from __future__ import annotations

from dataclasses import dataclass

import trio

from actors.cluster import ClusterLink
from actors.credentials import PasswordHasher, TokenSigner
from actors.hub import Hub
from settings import Settings
from storage import Storage


@dataclass(frozen=True)
class NodeServices:
    settings: Settings
    storage: Storage
    hasher: PasswordHasher
    signer: TokenSigner
    trio_token: trio.lowlevel.TrioToken
    node_id: str
    hub: Hub
    cluster: ClusterLink
