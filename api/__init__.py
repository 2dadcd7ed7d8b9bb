"""The node's HTTP listener: the server API for app backends (``/api/v1``), metrics,
health probes and the served web client, on hypercorn's trio worker in the node's
own event loop (docs/SERVER_API.md, docs/OPERATIONS.md)."""
