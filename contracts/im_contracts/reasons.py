"""Rejection wording that the product fixes word for word."""

BLOCKED_BY_SELLER_CREATOR_DETAIL = "You cannot send messages to seller now as you are blocked by them."
"""`MessageRejected.detail` for a creator whose messages the seller blocked (R11)."""
