"""The actor runtime: entity actors as trio tasks, their supervisor and routing."""
