"""Outgoing webhooks without the store: retry schedule (`schedule`), body, signature and POST through the
one outbound guard (`sender`, `signing`; the rules are `connectors.outbound`), and per-endpoint limits
(`limits`). The delivery actor ties them to the store.
"""
