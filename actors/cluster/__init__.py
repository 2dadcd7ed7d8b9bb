"""Several nodes as one service: envelopes between nodes, the link that sends and
receives them, the outbox of a session held elsewhere, and entity ownership."""
