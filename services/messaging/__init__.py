"""Messaging: conversations and their ordered messages, bulk sends (R1, R2, R19)."""
