"""What this quota consumer owns, kept in memory between batches (no I/O here).

im.send.screened is keyed by seller, so the consumer that owns a partition is the
only writer of its sellers' conversations, allowances, week tiers and charges
(DESIGN §3). What its last successful batch wrote, or read, is therefore what the
store holds, and the next batch reads only what is not held here. Facts that
other consumers write (connections, GMV, followers) are read every batch.

Held entries are fenced, never trusted blindly: every write of a batch is
conditional on what it was judged by (`v` as held, or the document's absence),
so should another writer have changed one (an overlap during a rebalance), the
write fails, everything held is forgotten and the batch is judged again against
the store. A rebalance forgets everything too: a partition handed back later may
have been written by its other owner meanwhile."""

from collections.abc import MutableMapping
from dataclasses import replace
from typing import TypeVar

from services.quota.book import Book, Keys, Versioned
from services.quota.domain import Charge, Tier

V = TypeVar("V")


class Owned:
    def __init__(self, limit: int) -> None:
        """`limit`: entries held per collection; the least recently used go first."""
        self.limit = limit
        # A key held with None: the document is known to be absent.
        self.conversations: dict[str, Versioned | None] = {}
        self.allowances: dict[str, Versioned | None] = {}
        self.week_tiers: dict[str, Tier | None] = {}
        self.charges: dict[str, Charge | None] = {}
        self._forgotten_since_lent = False

    def forget(self) -> None:
        for held in (self.conversations, self.allowances, self.week_tiers, self.charges):
            held.clear()
        self._forgotten_since_lent = True

    def unknown(self, keys: Keys) -> Keys:
        """The keys the store must be asked for."""
        return replace(
            keys,
            conversations=keys.conversations - self.conversations.keys(),
            pools=keys.pools - self.allowances.keys(),
            week_tiers=keys.week_tiers - self.week_tiers.keys(),
            charges=keys.charges - self.charges.keys(),
        )

    def lend(self, book: Book, keys: Keys) -> Book:
        """`book` (loaded for the unknown keys) completed with copies of what is held:
        judging changes a Book in place, and a batch that fails must leave nothing here."""
        self._forgotten_since_lent = False
        for key in keys.conversations:
            if (doc := self.conversations.get(key)) is not None:
                book.conversations[key] = _copy(doc)
        for key in keys.pools:
            if (doc := self.allowances.get(key)) is not None:
                book.allowances[key] = _copy(doc)
        for key in keys.week_tiers:
            if (tier := self.week_tiers.get(key)) is not None:
                book.week_tiers[key] = tier
        for key in keys.charges:
            if (charge := self.charges.get(key)) is not None:
                book.charges[key] = charge
        return book

    def keep(self, book: Book, keys: Keys) -> None:
        """Hold what the store has now that `book`, judged from `keys`, is written."""
        if self._forgotten_since_lent:  # a rebalance while the batch ran
            return
        for key in keys.conversations:
            self._hold(self.conversations, key, _written(book.conversations.get(key)))
        for key in keys.pools:
            self._hold(self.allowances, key, _written(book.allowances.get(key)))
        for key in keys.week_tiers:
            self._hold(self.week_tiers, key, book.week_tiers.get(key))
        for key in keys.charges:
            self._hold(self.charges, key, book.charges.get(key))

    def _hold(self, held: MutableMapping[str, V], key: str, value: V) -> None:
        held.pop(key, None)  # re-inserted last: the dict's order is the recency
        held[key] = value
        while len(held) > self.limit:
            del held[next(iter(held))]


def _copy(doc: Versioned) -> Versioned:
    return Versioned({name: list(value) if isinstance(value, list) else value for name, value in doc.fields.items()},
                     doc.loaded_v)


def _written(doc: Versioned | None) -> Versioned | None:
    """The document as stored after the batch's write: every write bumps `v` (an
    insert stores 1); an absent document the batch did not write stays absent."""
    if doc is None or (doc.loaded_v is None and not doc.changed):
        return None
    if not doc.changed:
        return Versioned(doc.fields, doc.loaded_v)
    return Versioned(doc.fields, (doc.loaded_v or 0) + 1)
