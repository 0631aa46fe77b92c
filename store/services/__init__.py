"""Domain services: the only code that changes the store. Each records its events in the outbox."""
