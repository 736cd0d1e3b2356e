"""Metered billing: usage recording, money, quotas, rate limits, API keys, reports, KV mirror.

Knows nothing of HTTP or wasm; see ``billing/keys.py`` for the Redis keyspace.
"""
