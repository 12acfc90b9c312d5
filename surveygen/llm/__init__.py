"""Talking to OpenAI-compatible endpoints: the client, its cache and ledger, answer parsing."""
