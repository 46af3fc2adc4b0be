"""State a consumer holds in memory for what it owns, bounded by recency."""

from collections.abc import MutableMapping
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def hold(held: MutableMapping[K, V], key: K, value: V, limit: int) -> None:
    """Hold `value` as the most recently used; the least recently used go beyond `limit`."""
    held.pop(key, None)  # re-inserted last: the dict's order is the recency
    held[key] = value
    while len(held) > limit:
        del held[next(iter(held))]
