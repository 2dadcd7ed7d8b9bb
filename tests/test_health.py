"""The HTTP listener's probes and served files: ``/health``, ``/ready`` (503 while
Redis is down and while the node stops), and the web client folder at ``/``."""

from __future__ import annotations

from pathlib import Path

import httpx
import trio

import settings as config
from storage import EmbeddedRedis
from tests.conftest import StartNode
from tests.support import eventually


async def test_health_and_ready_answer_200_on_a_running_node(start_node: StartNode) -> None:
    node = await start_node(http={"enabled": True})
    assert node.http_url is not None and node.http_url.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient(base_url=node.http_url) as http:
        alive = await http.get("/health")
        assert alive.status_code == 200
        assert alive.json() == {"status": "ok", "node_id": node.node_id, "checks": {}}
        ready = await http.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"redis": True, "registered": True, "running": True}


async def test_the_listener_is_off_by_default(start_node: StartNode) -> None:
    assert config.Settings().http.enabled is False
    node = await start_node()
    assert node.http_url is None


async def test_ready_fails_while_redis_is_down_and_recovers(
    tmp_path: Path, start_node: StartNode
) -> None:
    private = EmbeddedRedis(tmp_path / "redis")
    await trio.to_thread.run_sync(private.start)
    try:
        node = await start_node(redis={"url": private.url}, http={"enabled": True})
        assert node.http_url is not None
        async with httpx.AsyncClient(base_url=node.http_url, timeout=15) as http:
            assert (await http.get("/ready")).status_code == 200
            await trio.to_thread.run_sync(private.stop)
            down = await http.get("/ready")
            assert down.status_code == 503
            assert down.json()["status"] == "unavailable"
            assert down.json()["checks"]["redis"] is False
            assert (await http.get("/health")).status_code == 200  # the process still answers
            await trio.to_thread.run_sync(private.start)

            async def ready_again() -> bool:
                return (await http.get("/ready")).status_code == 200

            await eventually(ready_again, timeout=20, interval=0.2)
    finally:
        await trio.to_thread.run_sync(private.stop)


async def test_ready_fails_once_the_node_stops(start_node: StartNode) -> None:
    node = await start_node(http={"enabled": True})
    assert node.http_url is not None
    async with httpx.AsyncClient(base_url=node.http_url) as http:
        assert (await http.get("/ready")).status_code == 200
        node.request_stop()
        answered = await http.get("/ready")
        assert answered.status_code == 503
        assert answered.json()["checks"]["running"] is False
    await node.stopped.wait()


async def test_the_web_root_is_served_at_slash(tmp_path: Path, start_node: StartNode) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>Parley</title>")
    (tmp_path / "app.js").write_text("console.log('parley')")
    node = await start_node(http={"enabled": True, "web_root": str(tmp_path)})
    assert node.http_url is not None
    async with httpx.AsyncClient(base_url=node.http_url) as http:
        index = await http.get("/")
        assert index.status_code == 200
        assert "<title>Parley</title>" in index.text
        assert index.headers["content-type"].startswith("text/html")
        script = await http.get("/app.js")
        assert script.status_code == 200 and "parley" in script.text
        assert (await http.get("/missing.js")).status_code == 404
        assert (await http.get("/../settings.py")).status_code == 404


async def test_no_web_root_means_no_files(tmp_path: Path, start_node: StartNode) -> None:
    node = await start_node(http={"enabled": True, "web_root": str(tmp_path / "missing")})
    assert node.http_url is not None
    async with httpx.AsyncClient(base_url=node.http_url) as http:
        assert (await http.get("/")).status_code == 404
        assert (await http.get("/health")).status_code == 200
