"""What every actor of a node is given: storage, settings, credentials, the hub and
the cluster link."""

from __future__ import annotations

from dataclasses import dataclass

from actors.cluster.link import ClusterLink
from actors.node.hub import Hub
from actors.runtime.credentials import PasswordHasher, TokenSigner
from settings import Settings
from storage import Storage


@dataclass(frozen=True)
class NodeServices:
    settings: Settings
    storage: Storage
    hasher: PasswordHasher
    signer: TokenSigner
    node_id: str
    hub: Hub
    cluster: ClusterLink
