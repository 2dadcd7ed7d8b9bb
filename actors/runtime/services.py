"""What every actor of a node is given: storage, settings, credentials, the hub, the
cluster link and the node's metrics registry (each part defines its own metrics in it)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from actors.cluster.link import ClusterLink
from actors.limits.metrics import LimitMetrics
from actors.limits.sends import SendLimiter
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
    registry: CollectorRegistry
    limit_metrics: LimitMetrics
    send_limiter: SendLimiter
