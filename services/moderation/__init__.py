"""Moderation: blocks both ways, seller access, content rules; screens every send (R11-R14)."""
