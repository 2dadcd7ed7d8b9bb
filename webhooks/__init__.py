"""Webhooks: signed HTTP calls from the node to the app's server, before an action
(which the app may refuse or, for a message, change) and after it (delivered at least
once, never delaying the action). See docs/WEBHOOKS.md."""
