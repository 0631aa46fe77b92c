"""Domain services: the only code that changes the store. Each records its events in the outbox.

Outgoing webhooks are six modules: `webhook_endpoints` (endpoints and REST hooks), `webhook_secrets`
(signing secrets), `outbox_relay` (outbox events into deliveries), `deliveries` (made, due, leased,
listed), `delivery_attempts` (what a job reads and what its outcomes change), `delivery_replays`.
"""
