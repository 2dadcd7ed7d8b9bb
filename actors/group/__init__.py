"""The group actor, its state and rules, and its command groups: administration,
joining, members, and group chat."""
