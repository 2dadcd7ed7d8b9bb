"""A webhook receiver for benchmarks: answers every POST at once with ``200`` and
``{"allow": true}`` (a before-callback that allows everything), on 127.0.0.1.

    python bench/webhook_receiver.py [--port 0]

prints ``webhook receiver listening on http://127.0.0.1:PORT/hook`` and serves
until interrupted, then prints how many requests it answered and the CPU it used.
It checks nothing (no signature): it stands for an app server whose answer costs
next to nothing, so that a benchmark measures what a before-call costs the node.
HTTP/1.1 with keep-alive on asyncio's streams; bodies are framed by
``Content-Length``, as the node's client sends them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import signal

ANSWER_BODY = b'{"allow": true}'
ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b"Content-Length: " + str(len(ANSWER_BODY)).encode() + b"\r\n\r\n" + ANSWER_BODY
)
MAX_HEAD_BYTES = 65536


class Counter:
    answered = 0


async def _serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counter: Counter
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > MAX_HEAD_BYTES:
                return
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            writer.write(ANSWER)
            counter.answered += 1
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def main(port: int) -> None:
    counter = Counter()
    server = await asyncio.start_server(
        lambda r, w: _serve_connection(r, w, counter), "127.0.0.1", port
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"webhook receiver listening on http://127.0.0.1:{bound}/hook", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    print(f"webhook receiver answered {counter.answered} requests, {cpu:.2f} s of CPU", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(main(parser.parse_args().port))
