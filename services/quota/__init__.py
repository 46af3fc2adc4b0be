"""Quota: GMV tiers, weekly outreach ledger, starter pack, connections, reply cap (R3-R10)."""
