"""What every actor of a node is given: storage, settings, credentials, the hub, the
cluster link, the webhooks and the node's metrics registry (each part defines its own
metrics in it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from actors.cluster.link import ClusterLink
from actors.limits.metrics import LimitMetrics
from actors.limits.sends import SendLimiter
from actors.node.hub import Hub
from actors.runtime.credentials import PasswordHasher, TokenSigner
from actors.runtime.metrics import ActorMetrics
from settings import Settings
from storage import Storage
from webhooks.dispatcher import Webhooks


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
    webhooks: Webhooks
    metrics: ActorMetrics = field(default_factory=ActorMetrics)
    """The actors' own counters (``actors.runtime.metrics``), read at scrape time."""
