"""``/metrics``: the node's registry in Prometheus' text format, parsed with
prometheus-client's own parser, and the figures moving as sessions sign in and
messages flow."""

from __future__ import annotations

import httpx
import msgspec
from prometheus_client.parser import text_string_to_metric_families

import server
from client import ParleyError
from protocol import messages as m
from tests.conftest import StartNode
from tests.rawws import RawClient
from tests.support import Connect, eventually, signed_in

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(node: server.RunningNode) -> tuple[Samples, dict[str, str]]:
    """Every sample by (name, sorted labels), and each family's type."""
    assert node.http_url is not None
    async with httpx.AsyncClient(base_url=node.http_url) as http:
        answer = await http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(answer.text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples, types


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_names_types_and_labels_follow_prometheus_conventions(
    start_node: StartNode,
) -> None:
    node = await start_node(http={"enabled": True})
    samples, types = await scrape(node)
    assert all(name.startswith("parley_") for name in types), types
    expected = {
        "parley_connections": "gauge",
        "parley_sessions_signed_in": "gauge",
        "parley_requests": "counter",
        "parley_request_duration_seconds": "histogram",
        "parley_messages_stored": "counter",
        "parley_pushes_delivered": "counter",
        "parley_slow_consumer_closes": "counter",
        "parley_session_closes": "counter",
        "parley_redis_batch_commands": "histogram",
        "parley_redis_batch_seconds": "histogram",
        "parley_redis_batches": "counter",
        "parley_actors": "gauge",
    }
    for name, kind in expected.items():
        assert types.get(name) == kind, (name, types.get(name))
    counters = [family for family, kind in types.items() if kind == "counter"]
    assert counters
    for (name, _), _value in samples.items():
        family = next((f for f in counters if name.startswith(f)), None)
        if family is not None:  # the parser reports counter families without _total
            assert name == f"{family}_total", name
    for family, kind in types.items():
        if kind == "histogram":
            assert family.endswith(("_seconds", "_commands")), family
    assert ("parley_redis_batch_seconds_bucket", (("le", "+Inf"),)) in samples
    assert value(samples, "parley_actors", kind="user") == 0
    assert value(samples, "parley_actors", kind="group") == 0


async def test_figures_move_when_messages_flow(start_node: StartNode, connect: Connect) -> None:
    node = await start_node(http={"enabled": True})
    before, _ = await scrape(node)
    ada = await connect(node.url)
    await signed_in(ada, "ada")
    bob = await connect(node.url)
    await signed_in(bob, "bob")
    sends = 5
    for n in range(sends):
        await ada.send_text(f"message {n}", to_user_id="bob")
    for _ in range(sends):
        await bob.next_event(m.NewMessage)
    after, _ = await scrape(node)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert value(after, "parley_connections") == 2
    assert value(after, "parley_sessions_signed_in") == 2
    assert moved("parley_requests_total", command="send_message", result="OK") == sends
    assert moved("parley_requests_total", command="login", result="OK") == 2
    assert moved("parley_request_duration_seconds_count", command="send_message") == sends
    assert value(after, "parley_request_duration_seconds_sum", command="send_message") > 0
    assert (
        value(after, "parley_request_duration_seconds_bucket", command="send_message", le="+Inf")
        == sends
    )
    assert moved("parley_messages_stored_total") == sends
    assert moved("parley_pushes_delivered_total") >= sends  # bob's device got each one
    assert moved("parley_redis_batches_total") > 0
    assert moved("parley_redis_commands_total") >= moved("parley_redis_batches_total")
    batches = moved("parley_redis_batch_commands_count")
    assert batches == moved("parley_redis_batches_total")
    assert moved("parley_redis_batch_seconds_count") > 0
    assert value(after, "parley_actors", kind="user") >= 2


async def test_refusals_are_counted_by_their_error_code(
    start_node: StartNode, connect: Connect
) -> None:
    node = await start_node(http={"enabled": True})
    client = await connect(node.url)
    await signed_in(client, "ada")
    stranger = await connect(node.url)
    try:
        await stranger.login("ada", "wrong-password", 7)
    except ParleyError as exc:
        assert exc.name == "BAD_CREDENTIALS"
    raw = await RawClient.open(node.url)
    try:
        await raw.send(msgspec.msgpack.encode({"t": "get_self", "rid": 1}))
        await raw.next_message()
        await raw.send(b"\xc1 not msgpack")
        await raw.next_message()
    finally:
        await raw.aclose()
    samples, _ = await scrape(node)
    assert value(samples, "parley_requests_total", command="login", result="BAD_CREDENTIALS") == 1
    assert (
        value(samples, "parley_requests_total", command="get_self", result="NOT_AUTHENTICATED") == 1
    )
    assert value(samples, "parley_requests_total", command="invalid", result="BAD_FRAME") == 1


async def test_session_closes_are_counted_by_code(start_node: StartNode, connect: Connect) -> None:
    node = await start_node(http={"enabled": True})
    client = await connect(node.url, reconnect=False)
    await signed_in(client, "ada")
    await client.logout()
    await client.wait_closed()

    async def counted() -> bool:
        samples, _ = await scrape(node)
        return value(samples, "parley_session_closes_total", code="4502") == 1

    await eventually(counted)
    samples, _ = await scrape(node)
    assert value(samples, "parley_connections") == 0
    assert value(samples, "parley_slow_consumer_closes_total") == 0


async def test_each_node_has_its_own_figures(start_node: StartNode, connect: Connect) -> None:
    first = await start_node(http={"enabled": True})
    second = await start_node(http={"enabled": True})
    client = await connect(first.url)
    await signed_in(client, "ada")
    on_first, _ = await scrape(first)
    on_second, _ = await scrape(second)
    assert value(on_first, "parley_sessions_signed_in") == 1
    assert value(on_second, "parley_sessions_signed_in") == 0
