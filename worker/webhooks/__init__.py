"""Outgoing webhooks without the store: SSRF guard (`ssrf`), retry schedule (`schedule`), body, signature
and POST (`sender`), and per-endpoint concurrency (`limits`). The delivery actor ties them to the store.
"""
