"""Inbox projection: the seller inbox read model (R15-R17)."""
