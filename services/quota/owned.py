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

from collections.abc import Iterator
from dataclasses import replace
from typing import Any, TypeVar

from services.common.held import hold
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
        self._lent: Keys | None = None

    def forget(self) -> None:
        for held in self._held():
            held.clear()
        self._lent = None  # a batch in flight must not put back what it was lent

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
        self._lent = keys
        for held, wanted, lent in self._collections(book, keys):
            for key in wanted:
                if (doc := held.get(key)) is not None:
                    lent[key] = _copy(doc)
        return book

    def keep(self, book: Book) -> None:
        """Hold what the store has now that `book`, the last one lent, is written."""
        if self._lent is None:  # forgotten (a rebalance) while the batch ran
            return
        for held, wanted, written in self._collections(book, self._lent):
            for key in wanted:
                hold(held, key, _written(written.get(key)), self.limit)
        self._lent = None

    def _held(self) -> tuple[dict[str, Any], ...]:
        return self.conversations, self.allowances, self.week_tiers, self.charges

    def _collections(self, book: Book, keys: Keys) -> Iterator[tuple[dict[str, Any], set[str], dict[str, Any]]]:
        """(held here, the keys wanted, the book's own) for each collection held."""
        wanted = keys.conversations, keys.pools, keys.week_tiers, keys.charges
        return zip(self._held(), wanted, (book.conversations, book.allowances, book.week_tiers, book.charges))


def _copy(doc: V) -> V:
    """Versioned documents copied (their lists change in place); tiers and charges are frozen."""
    if not isinstance(doc, Versioned):
        return doc
    return Versioned({name: list(value) if isinstance(value, list) else value for name, value in doc.fields.items()},
                     doc.loaded_v)


def _written(doc: V | None) -> V | None:
    """The document as stored after the batch's write: every write bumps `v` (an
    insert stores 1); an absent document the batch did not write stays absent.
    Tiers and charges are stored as they are."""
    if not isinstance(doc, Versioned):
        return doc
    if doc.loaded_v is None and not doc.changed:
        return None
    if not doc.changed:
        return Versioned(doc.fields, doc.loaded_v)
    return Versioned(doc.fields, (doc.loaded_v or 0) + 1)
