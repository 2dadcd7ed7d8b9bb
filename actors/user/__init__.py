"""The user actor and its command groups: accounts and sign-in, friends and the
blacklist, single chat, conversations, and the user's groups."""
