"""Redis URLs as they may be shown: in log lines, start-up messages and errors."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit


def redact_url(url: str) -> str:
    """``url`` without its password (in the authority or a ``password=`` parameter)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc and "password" not in parts.query:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        credentials, _, host = netloc.rpartition("@")
        user = credentials.partition(":")[0]
        netloc = f"{user}@{host}" if user else host
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"])
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
