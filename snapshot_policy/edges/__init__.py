"""The outside world: the clouds (providers), chats and webhooks (notify), healthchecks and
metrics (monitor), and the commands run around a snapshot (hooks)."""
