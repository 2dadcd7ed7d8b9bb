"""Real nodes on a real Redis Cluster (three masters from redis-server 7, the
``redis_cluster`` fixture; one replica each for the failover test): sign-in and token
sign-in on two nodes, sessions of one user on both, a kick and pushes crossing nodes
over sharded pub/sub, the node heartbeat, a killed node given up and its leases taken
over, the cluster fingerprint refusal, ``/ready``, bad cluster URLs refused at start;
a durability wait on every master written to; a manual failover and a killed master
of a node's inbox slot, after each of which pushes reach that node again; a
subscription and a route left on a replica found and moved to the master; masters
that speak only TLS and require a password.

Sends, friends and groups on the cluster are covered by the capability tests, which
run on both stores (``both_stores``), and by tests/test_cluster_failover.py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis
import trio
import trustme
from redis.crc import key_slot

import server
from actors.cluster.envelopes import InboxProbe, encode_envelope
from client import ParleyClient, ParleyError, Platform
from protocol import messages as m
from storage import Keys
from storage.cluster import ClusterRouter
from tests.conftest import StartNode
from tests.processes import NodeProcess, refused, stop_all
from tests.redis_cluster import ClusterNode, ClusterTls, RedisCluster
from tests.support import Connect, eventually, node_settings, signed_in

pytestmark = pytest.mark.parametrize("store", ["cluster"], indirect=True)

FAST = {"node_timeout": 2, "lease_time": 2}


async def typing_from(device: ParleyClient, user_id: str, timeout: float = 10) -> None:
    """Wait for a typing push from ``user_id`` (a sender's own devices get theirs too)."""
    with trio.fail_after(timeout):
        while (await device.next_event(m.Typing, timeout=timeout)).from_user_id != user_id:
            pass


async def test_two_nodes_serve_one_service_on_the_cluster(
    start_node: StartNode, connect: Connect, redis_client: redis.Redis, prefix: str
) -> None:
    a = await start_node(cluster=FAST, http={"enabled": True})
    b = await start_node(cluster=FAST, http={"enabled": True})
    keys = Keys(prefix)
    # Each node's record, session set and inbox share the node's slot; the nodes
    # are listed in the {cluster} slot.
    for node in (a, b):
        assert redis_client.get(keys.node(node.node_id)) is not None
        assert key_slot(keys.node(node.node_id).encode()) == key_slot(
            keys.node_inbox(node.node_id).encode()
        )
    listed = {cast(bytes, n).decode() for n in redis_client.zrange(keys.nodes(), 0, -1)}
    assert {a.node_id, b.node_id} <= listed

    alice_phone = await connect(a.url)
    await signed_in(alice_phone, "alice", Platform.IOS)
    bob = await connect(b.url)
    await signed_in(bob, "bob", Platform.ANDROID)
    alice_desktop = await connect(b.url)
    token = await signed_in(alice_desktop, "alice", Platform.WINDOWS)
    both = {"alice": [Platform.IOS, Platform.WINDOWS], "bob": [Platform.ANDROID]}
    assert await bob.get_online_status(["alice", "bob"]) == both

    # Pushes cross nodes both ways (published to the other node's inbox).
    await alice_phone.send_message(m.TypingContent(), to_user_id="bob")
    await typing_from(bob, "alice")
    await bob.send_message(m.TypingContent(), to_user_id="alice")
    for device in (alice_phone, alice_desktop):
        await typing_from(device, "bob")

    # The desktop's token signs in on node a, which displaces the desktop's session
    # on node b (same platform): the kick crosses nodes.
    replacement = await connect(a.url)
    await replacement.login_with_token(token)
    kicked = await alice_desktop.next_event(m.Kicked)
    assert kicked.close_code == 4500
    await alice_desktop.wait_closed()
    assert alice_desktop.close_code == 4500

    async def presence_follows() -> bool:
        return await bob.get_online_status(["alice", "bob"]) == both

    await eventually(presence_follows)
    assert redis_client.hlen(keys.presence("alice")) == 2  # the phone and the replacement
    await bob.send_message(m.TypingContent(), to_user_id="alice")
    await typing_from(replacement, "bob")

    for node in (a, b):
        assert node.http_url is not None
        async with httpx.AsyncClient(base_url=node.http_url, timeout=15) as http:
            ready = await http.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"redis": True, "registered": True, "running": True}


async def test_a_killed_node_is_given_up_and_its_users_taken_over(
    redis_url: str, prefix: str, start_node: StartNode, connect: Connect, redis_client: redis.Redis
) -> None:
    keys = Keys(prefix)
    doomed = NodeProcess(
        f"--redis-url={redis_url}", f"--prefix={prefix}", "--set", "cluster.node_timeout=2",
        "--set", "cluster.lease_time=2",
    )  # fmt: skip
    try:
        survivor = await start_node(cluster=FAST)
        uma = await connect(doomed.url)
        token = await signed_in(uma, "uma", Platform.IOS)
        assert redis_client.get(keys.lease("user", "uma")) == doomed.node_id.encode()
        assert redis_client.scard(keys.node_sessions(doomed.node_id)) == 1
        witness = await connect(survivor.url)
        await signed_in(witness, "wes", Platform.LINUX)
        assert await witness.get_online_status(["uma"]) == {"uma": [Platform.IOS]}
        doomed.kill()

        # The survivor's heartbeat gives the dead node up: its key, its session set,
        # its users' presence entries and its entry in the set of nodes.
        def given_up() -> bool:
            return (
                redis_client.exists(keys.node(doomed.node_id)) == 0
                and redis_client.exists(keys.node_sessions(doomed.node_id)) == 0
                and redis_client.hlen(keys.presence("uma")) == 0
                and redis_client.zscore(keys.nodes(), doomed.node_id) is None
            )

        await eventually(given_up, timeout=30, interval=0.2)
        # Its user is served again: the lease is taken over by the survivor.
        again = await connect(survivor.url)
        await again.login_with_token(token)
        assert redis_client.get(keys.lease("user", "uma")) == survivor.node_id.encode()
        assert await witness.get_online_status(["uma"]) == {"uma": [Platform.IOS]}
    finally:
        stop_all([doomed])


async def test_different_cluster_settings_are_refused(
    redis_url: str, prefix: str, start_node: StartNode
) -> None:
    await start_node()
    line = await trio.to_thread.run_sync(
        lambda: refused(
            f"--redis-url={redis_url}", f"--prefix={prefix}", "--set=session.multi_login=all"
        )
    )
    assert "settings differ from the running nodes" in line and "session.multi_login" in line


async def test_a_durability_the_masters_cannot_give_is_refused(redis_url: str, prefix: str) -> None:
    """The wait is checked on every master at start: these have no replicas."""
    line = await trio.to_thread.run_sync(
        lambda: refused(
            f"--redis-url={redis_url}", f"--prefix={prefix}", "--set=redis.durability=replicas"
        )
    )
    assert "redis.durability: the first WAIT failed: 0 of 1 replicas" in line, line


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+cluster://", "redis.url: expected redis+cluster://host:port"),
        ("redis+cluster://127.0.0.1:1,,127.0.0.1:2", "redis.url: an empty seed"),
        ("redis+cluster://127.0.0.1:1", "redis.url: cannot reach redis+cluster://127.0.0.1:1"),
    ],
)
async def test_bad_cluster_urls_are_refused_at_start(
    url: str, says: str, prefix: str, store: str
) -> None:
    """(``store``: the module's parametrisation; this test starts no store.)"""
    line = await trio.to_thread.run_sync(
        lambda: refused(f"--redis-url={url}", f"--prefix={prefix}")
    )
    assert says in line, line


async def test_pushes_arrive_again_after_a_failover_of_the_inbox_master(
    failover_cluster: RedisCluster, start_node: StartNode, connect: Connect, prefix: str
) -> None:
    url = failover_cluster.url
    # First, with a durability wait on every master a batch wrote to (each has its
    # replica now): a sign-in is confirmed. (After the failover one master has no
    # replica left, so such a node could confirm no write there.)
    durable = await start_node(redis={"url": url, "durability": "replicas", "replicas": 1})
    await signed_in(await connect(durable.url), "carol", Platform.IOS)
    await durable.stop()
    a = await start_node(redis={"url": url}, cluster={"node_timeout": 15})
    b = await start_node(redis={"url": url}, cluster={"node_timeout": 15})
    alice = await connect(a.url)
    await signed_in(alice, "alice", Platform.IOS)
    bob = await connect(b.url)
    await signed_in(bob, "bob", Platform.ANDROID)
    await bob.send_message(m.TypingContent(), to_user_id="alice")
    await typing_from(alice, "bob")

    # A manual failover of node b's inbox slot: its old master, now a replica, ends
    # the sharded subscription (sunsubscribe); node b subscribes again at once.
    slot = key_slot(Keys(prefix).node_inbox(b.node_id).encode())
    old = failover_cluster.master_of_slot(slot)
    await trio.to_thread.run_sync(manual_failover, failover_cluster, old)

    await eventually(lambda: typing_arrives(alice, "alice", bob, "bob"), timeout=60)

    inbox = Keys(prefix).node_inbox(a.node_id)
    master = failover_cluster.master_of_slot(key_slot(inbox.encode()))
    await trio.to_thread.run_sync(failover_cluster.kill, master)
    await trio.to_thread.run_sync(failover_cluster.await_failover, master)

    # Node a subscribes again through the promoted replica: a push from node b
    # arrives (publications sent while it had no subscription are lost, at most once).
    await eventually(lambda: typing_arrives(bob, "bob", alice, "alice"), timeout=60)


async def typing_arrives(sender: ParleyClient, name: str, peer: ParleyClient, to: str) -> bool:
    """Whether a typing push from ``sender`` reaches ``peer`` within a second (a push
    published while the peer's node had no subscription is lost)."""
    try:
        await sender.send_message(m.TypingContent(), to_user_id=to)
        await typing_from(peer, name, timeout=1)
        return True
    except (trio.TooSlowError, ParleyError):
        return False


def manual_failover(cluster: RedisCluster, master: ClusterNode) -> None:
    """``CLUSTER FAILOVER`` on ``master``'s replica; returns once it is the master."""

    def role(node: ClusterNode) -> list[Any]:
        client = node.client()
        try:
            return client.role()
        finally:
            client.close()

    replica = cluster.replica_of(master)
    client = replica.client()
    client.cluster("FAILOVER")
    client.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if role(replica)[0] == b"master" and role(master)[0] == b"slave":
            cluster.await_healthy(timeout=30)
            return
        time.sleep(0.1)
    raise AssertionError("the manual failover did not complete")


async def test_a_subscription_or_a_route_to_a_replica_is_found_and_moved_to_the_master(
    failover_cluster: RedisCluster,
    start_node: StartNode,
    connect: Connect,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A replica takes ``SSUBSCRIBE`` and is sent its slot's publications, but an
    ``SPUBLISH`` run on the master counts only the master's subscribers: a node
    subscribed on a replica (as after a failover, when its slot map named the old
    master, back as a replica) looked deaf, and every forward to it was refused
    (``OWNER_NOT_LISTENING``). Its heartbeat's probe finds that and it subscribes
    again on the master. Likewise a router whose map still names the replica (which
    runs an ``SPUBLISH`` itself) reads the map again when one reaches nobody."""
    url = failover_cluster.url
    a = await start_node(redis={"url": url}, cluster=FAST)
    b = await start_node(redis={"url": url}, cluster=FAST)
    alice = await connect(a.url)
    await signed_in(alice, "alice", Platform.IOS)
    bob = await connect(b.url)
    await signed_in(bob, "bob", Platform.ANDROID)
    assert (await bob.send_text("before", to_user_id="alice")).seq == 1

    inbox = Keys(prefix).node_inbox(a.node_id)
    old = failover_cluster.master_of_slot(key_slot(inbox.encode()))
    new = failover_cluster.replica_of(old)
    subscribed_at = {n.port: n.client() for n in (old, new)}

    def subscribers(node: ClusterNode) -> int:
        [(_, count)] = subscribed_at[node.port].pubsub_shardnumsub(inbox)
        return int(count)

    # A manual failover ends node a's subscription (the old master sends
    # sunsubscribe); its next one is made where a stale slot map would send it: on
    # the old master, a replica now.
    on_master = a.storage._pubsub_for
    misplaced: list[Any] = []

    def once_on_the_old_master(channel: str) -> Any:
        if channel != inbox or misplaced:
            return on_master(channel)
        misplaced.append(old.client())
        return misplaced[0].pubsub()

    monkeypatch.setattr(a.storage, "_pubsub_for", once_on_the_old_master)
    await trio.to_thread.run_sync(manual_failover, failover_cluster, old)
    await eventually(lambda: misplaced and subscribers(old) == 1)

    await eventually(lambda: subscribers(new) == 1 and subscribers(old) == 0)
    resubscribed = a.registry.get_sample_value("parley_cluster_inbox_resubscriptions_total")
    assert resubscribed is not None and resubscribed >= 1
    sent = await bob.send_text("after", to_user_id="alice")
    assert sent.seq == 2
    with trio.fail_after(10):
        while (await alice.next_event(m.NewMessage)).message.seq != sent.seq:
            pass

    # A router whose map names the old master, a replica now, as the inbox's master.
    router = ClusterRouter(url, lambda node_url: redis.Redis.from_url(node_url, socket_timeout=5))
    monkeypatch.setattr("storage.cluster.UNHEARD_REFRESH_S", 0.0)
    try:
        router.refresh()
        router._owner[key_slot(inbox.encode())] = ("127.0.0.1", old.port)
        probe = encode_envelope(InboxProbe())
        counts = []
        for _ in range(2):
            pipe = router.pipeline()
            pipe.execute_command("SPUBLISH", inbox, probe)
            counts.extend(pipe.execute())
        assert counts == [0, 1]
    finally:
        router.close()
        for client in (*subscribed_at.values(), *misplaced):
            client.close()


async def test_a_cluster_over_tls_with_a_password(
    tmp_path: Path, nursery: trio.Nursery, connect: Connect, prefix: str, store: str
) -> None:
    """Masters that speak only TLS (with a private CA, given by ``ssl_ca_certs`` in the
    URL) and require a password: the URL's credentials and TLS options reach every
    master the slot map names, sign-ins and pushes work across two nodes, and a wrong
    password stops a node at start with a message that does not show it.
    (``store``: the module's parametrisation; this test starts its own cluster.)"""
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    files = {name: tmp_path / f"{name}.pem" for name in ("cert", "key", "ca")}
    files["cert"].write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(files["key"]))
    ca.cert_pem.write_to_path(str(files["ca"]))
    tls = ClusterTls(*(str(files[name]) for name in ("cert", "key", "ca")))
    cluster = RedisCluster(tmp_path / "cluster", password="s3cret-pw", tls=tls)
    await trio.to_thread.run_sync(cluster.start)
    try:
        assert cluster.url.startswith("rediss+cluster://:s3cret-pw@")
        nodes = [
            await nursery.start(server.serve, node_settings(cluster.url, prefix)) for _ in range(2)
        ]
        # Node 0 relays pushes to node 1 once it has heard node 1 announce itself.
        await eventually(lambda: nodes[1].node_id in nodes[0].cluster.other_nodes)
        alice = await connect(nodes[0].url)
        await signed_in(alice, "alice", Platform.IOS)
        bob = await connect(nodes[1].url)
        await signed_in(bob, "bob", Platform.ANDROID)
        sent = await alice.send_message(m.TextContent(text="through TLS"), to_user_id="bob")
        pushed = await bob.next_event(m.NewMessage)
        assert (pushed.message.seq, pushed.message.server_msg_id) == (sent.seq, sent.server_msg_id)
        for node in nodes:
            await node.stop()

        wrong = cluster.url.replace(":s3cret-pw@", ":not-it@")
        line = await trio.to_thread.run_sync(
            lambda: refused(f"--redis-url={wrong}", f"--prefix={prefix}")
        )
        assert "redis.url: cannot reach" in line and "not-it" not in line, line
        untrusted = cluster.url.partition("?")[0]  # the system's CAs do not know ours
        line = await trio.to_thread.run_sync(
            lambda: refused(f"--redis-url={untrusted}", f"--prefix={prefix}")
        )
        assert "redis.url: cannot reach" in line and "certificate verify failed" in line, line
    finally:
        await trio.to_thread.run_sync(cluster.stop)
