"""Helpers for the node's Prometheus metrics that are cheap on the event loop's hot
path: plain counters and bucket arrays, read by collectors only at scrape time. Each
part of the node defines its own metrics in its own module (``storage.metrics``,
``actors.runtime.metrics``, ``actors.node.metrics``) against the node's registry."""
