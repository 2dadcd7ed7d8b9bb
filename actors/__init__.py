"""The actors of a Parley node, by layer: ``node`` (WebSocket sessions, the hub,
routing), ``cluster`` (other nodes), ``runtime`` (actors as trio tasks and their
supervisor), ``user`` and ``group`` (the entity actors and their commands), and
``delivery`` (storing and pushing messages and notifications)."""
