"""The actor runtime: entity actors as trio tasks and their supervisor, the messages
between connections and actors, answering commands, and what every actor is given."""
