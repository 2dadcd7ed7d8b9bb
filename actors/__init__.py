"""Actors of a Parley node: trio connections, pykka entity actors, and the bridge between them."""
