"""Task similarity (the task dictionary): probes, diagonal Fisher, Fisher and transform-network distances, the
incremental dictionary over the store."""
