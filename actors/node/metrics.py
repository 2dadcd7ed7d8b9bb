"""Metrics of the node's sessions and of its cluster link, read at scrape time from
the gateway's, the hub's and the link's counters."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from actors.cluster.link import ClusterLink
from actors.node.gateway import Gateway
from actors.node.hub import Hub
from protocol.errors import CloseCode


class SessionCollector(Collector):
    def __init__(self, gateway: Gateway, hub: Hub, cluster: ClusterLink) -> None:
        self._gateway = gateway
        self._hub = hub
        self._cluster = cluster

    def collect(self) -> Iterator[Metric]:
        gateway, hub, cluster = self._gateway, self._hub, self._cluster
        yield GaugeMetricFamily(
            "parley_connections",
            "WebSocket connections open (signed in or not)",
            value=gateway.connection_count,
        )
        yield GaugeMetricFamily(
            "parley_sessions_signed_in",
            "Signed-in sessions on this node",
            value=hub.signed_in_count,
        )
        yield CounterMetricFamily(
            "parley_connections_accepted",
            "WebSocket handshakes accepted",
            value=gateway.accepted,
        )
        yield CounterMetricFamily(
            "parley_handshakes_rejected",
            "WebSocket opening handshakes refused (bad request, origin, subprotocol)",
            value=gateway.rejected,
        )
        closes = CounterMetricFamily(
            "parley_session_closes",
            "Sessions ended, by the close code they ended with",
            labels=["code"],
        )
        for code, count in sorted(gateway.close_codes.items()):
            closes.add_metric([str(code)], count)
        yield closes
        yield CounterMetricFamily(
            "parley_slow_consumer_closes",
            "Sessions closed because the client read too slowly (4002)",
            value=gateway.close_codes[CloseCode.SLOW_CONSUMER],
        )
        yield CounterMetricFamily(
            "parley_pushes_delivered",
            "Pushes queued to sessions on this node (one per session reached)",
            value=hub.pushes_delivered,
        )
        yield GaugeMetricFamily(
            "parley_cluster_other_nodes", "Other live nodes", value=len(cluster.other_nodes)
        )
        yield CounterMetricFamily(
            "parley_cluster_envelopes_published",
            "Envelopes published to other nodes",
            value=cluster.published,
        )
        yield CounterMetricFamily(
            "parley_cluster_envelopes_received",
            "Envelopes received from other nodes",
            value=cluster.received,
        )
        yield CounterMetricFamily(
            "parley_cluster_envelopes_dropped",
            "Envelopes not published because Redis was out of reach",
            value=cluster.dropped,
        )
        yield CounterMetricFamily(
            "parley_cluster_inbox_resubscriptions",
            "Times this node subscribed to its inbox again because its heartbeat's probe"
            " publication reached no subscriber",
            value=cluster.resubscribed_by_probe,
        )
        yield CounterMetricFamily(
            "parley_cluster_replies_presumed_lost",
            "Forwarded requests answered UNAVAILABLE at once because the pub/sub"
            " subscription their reply comes back on was lost",
            value=cluster.forwarded.answered_unavailable,
        )
