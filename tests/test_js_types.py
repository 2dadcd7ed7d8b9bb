"""The JavaScript SDK's generated files (client-js/src/protocol.d.ts, codes.js) match the
server's wire definitions: a change in protocol/ without `make js-types` fails here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parent.parent / "client-js" / "tools" / "protocol_types.py"


def _tool() -> object:
    spec = importlib.util.spec_from_file_location("protocol_types", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("protocol_types", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["TYPES", "CODES"])
def test_the_generated_file_is_current(name: str) -> None:
    tool = _tool()
    target: Path = getattr(tool, name)
    render = tool.render if name == "TYPES" else tool.render_codes  # type: ignore[attr-defined]
    assert target.read_text() == render(), f"{target.name} is stale: run make js-types"


def test_every_request_has_a_reply_type_in_the_sdk() -> None:
    tool = _tool()
    types = tool.TYPES.read_text()  # type: ignore[attr-defined]
    replies = (TOOL.parent.parent / "src" / "replies.js").read_text()
    requests = types.split("export interface Requests {")[1].split("}")[0]
    for line in requests.strip().splitlines():
        tag = line.strip().split(":")[0]
        assert f"  {tag}: " in replies, f"replies.js lacks the reply of {tag}"
