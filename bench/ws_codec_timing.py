"""Microseconds per frame of the WebSocket frame codec (protocol/websocket.py).

Run ``python bench/ws_codec_timing.py``: for each payload size, decoding one masked
client frame per ``feed()`` call, decoding a batch of 16 frames in one call, decoding
a frame cut in two, encoding a server frame, and one decode plus one encode (what a
message costs the data path apart from its system calls). The best of several
repeats is printed, the figure least disturbed by a shared machine.
"""

from __future__ import annotations

import random
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

# Run as a script: make the repository importable.
_REPO = str(Path(__file__).resolve().parent.parent)
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = _REPO
elif _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from protocol.websocket import BinaryMessage, FrameDecoder, encode_binary  # noqa: E402

BATCH = 16


def client_frame(payload: bytes, key: bytes) -> bytes:
    """A masked binary frame as a client sends it."""
    n = len(payload)
    if n < 126:
        head = bytes([0x82, 0x80 | n])
    elif n < 0x10000:
        head = bytes([0x82, 0xFE]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x82, 0xFF]) + n.to_bytes(8, "big")
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


def best_us(action: Callable[[], object], per_call: int = 1) -> float:
    """The best of 7 repeats, in microseconds per frame."""
    number = 1
    while timeit.timeit(action, number=number) < 0.05:
        number *= 2
    return min(timeit.repeat(action, number=number, repeat=7)) / number / per_call * 1e6


def measure(size: int) -> dict[str, float]:
    rng = random.Random(size)
    payload = rng.randbytes(size)
    data = client_frame(payload, rng.randbytes(4))
    decoder = FrameDecoder(max_message_bytes=1 << 20)
    assert decoder.feed(data) == [BinaryMessage(payload)]
    batch = data * BATCH
    half = len(data) // 2
    head, tail = data[:half], data[half:]

    def split() -> None:
        decoder.feed(head)
        decoder.feed(tail)

    def round_trip() -> None:
        for event in decoder.feed(data):
            assert isinstance(event, BinaryMessage)
            encode_binary(event.data)

    return {
        "decode": best_us(lambda: decoder.feed(data)),
        f"decode x{BATCH}": best_us(lambda: decoder.feed(batch), BATCH),
        "decode split": best_us(split),
        "encode": best_us(lambda: encode_binary(payload)),
        "decode+encode": best_us(round_trip),
    }


def main() -> None:
    print(f"Python {sys.version.split()[0]}; us per frame, best of 7")
    rows = {size: measure(size) for size in (200, 4096, 65536)}
    columns = list(next(iter(rows.values())))
    print(f"{'payload':>8} " + " ".join(f"{c:>14}" for c in columns))
    for size, row in rows.items():
        print(f"{size:>8} " + " ".join(f"{row[c]:>14.2f}" for c in columns))


if __name__ == "__main__":
    main()
