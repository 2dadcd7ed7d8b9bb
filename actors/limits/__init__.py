"""Rate limits: token buckets per session, per user and per client address."""
