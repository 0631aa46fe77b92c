"""Directory sync: one engine applies every connector's records to the store."""
