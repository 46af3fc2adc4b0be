"""What a quota consumer holds in memory between batches: only what the store
holds after its own successful writes, copies lent to each batch, nothing kept
across a rebalance, at most `limit` entries per collection."""

from datetime import UTC, datetime

from services.quota.book import Book, Versioned, keys_of, pair_id, pool_id
from im_contracts import ChargeSource

from services.quota.domain import Allowance
from services.quota.owned import Owned
from tests.unit.quota.builders import SMALL

WEEK = SMALL.week_of(datetime(2026, 1, 5, 18, 0, tzinfo=UTC))
TIER = SMALL.tiers[1]


def empty_book() -> Book:
    return Book(connected=set(), conversations={}, gmv={}, followers={}, week_tiers={}, charges={}, allowances={})


def weekly(limit: int = 2) -> Allowance:
    return Allowance(pool=WEEK.key, source=ChargeSource.WEEKLY, limit=limit)


def judged(owned: Owned, sellers_creators: list[tuple[str, str]], stored: Book | None = None) -> tuple[Book, object]:
    keys = keys_of([(s, c, WEEK) for s, c in sellers_creators])
    return owned.lend(stored or empty_book(), keys), keys


def test_what_a_written_batch_read_and_wrote_is_held_and_not_asked_for_again() -> None:
    owned = Owned(limit=100)
    book, keys = judged(owned, [("s", "c1")])
    assert owned.unknown(keys) == keys  # nothing held yet
    book.take_unit("s", weekly(), "cmd-1")
    book.count_seller_message("s", "c1", "cmd-1", slots=3)
    owned.keep(book)

    unknown = owned.unknown(keys)
    assert (unknown.conversations, unknown.pools, unknown.week_tiers, unknown.charges) == (set(), set(), set(), set())
    # Facts other consumers write are always read.
    assert (unknown.pairs, unknown.sellers, unknown.creators) == (keys.pairs, keys.sellers, keys.creators)
    # As stored: each written document's v bumped once (an insert stores 1), absent ones held as absent.
    assert owned.allowances[pool_id("s", WEEK.key)].loaded_v == 1
    assert owned.conversations[pair_id("s", "c1")].loaded_v == 1
    assert owned.allowances[pool_id("s", "starter")] is None and owned.charges and set(owned.charges.values()) == {None}


def test_a_batch_is_lent_copies_so_a_failed_one_leaves_nothing_changed() -> None:
    owned = Owned(limit=100)
    book, keys = judged(owned, [("s", "c1")])
    book.take_unit("s", weekly(), "cmd-1")
    owned.keep(book)

    second, _ = judged(owned, [("s", "c1")])
    assert second.units("s", WEEK.key).held_by("cmd-1") == 1
    second.take_unit("s", weekly(), "cmd-2")  # judged, never written
    assert owned.allowances[pool_id("s", WEEK.key)].fields["holders"] == ["cmd-1"]


def test_unchanged_documents_keep_their_version() -> None:
    owned = Owned(limit=100)
    stored = empty_book()
    stored.allowances[pool_id("s", WEEK.key)] = Versioned({"holders": ["a", "b"], "handed_out": 2}, 7)
    book, keys = judged(owned, [("s", "c1")], stored)
    assert book.take_unit("s", weekly(limit=2), "cmd-3") is None  # all held: refused, nothing written
    owned.keep(book)
    assert owned.allowances[pool_id("s", WEEK.key)].loaded_v == 7


def test_a_rebalance_forgets_everything_even_a_batch_in_flight() -> None:
    owned = Owned(limit=100)
    book, keys = judged(owned, [("s", "c1")])
    owned.keep(book)
    assert owned.unknown(keys).pools == set()

    in_flight, keys = judged(owned, [("s", "c1")])
    owned.forget()  # partitions revoked while the batch ran
    owned.keep(in_flight)
    assert owned.unknown(keys) == keys

    after, keys = judged(owned, [("s", "c1")])  # the next batch reads the store again
    owned.keep(after)
    assert owned.unknown(keys).pools == set()


def test_at_most_limit_entries_per_collection_the_least_recently_used_dropped() -> None:
    owned = Owned(limit=2)
    for creator in ("c1", "c2", "c1", "c3"):  # c1 used again before c3 arrives
        book, keys = judged(owned, [("s", creator)])
        owned.keep(book)
    assert list(owned.conversations) == [pair_id("s", "c1"), pair_id("s", "c3")]
    assert all(len(held) <= 2 for held in (owned.conversations, owned.allowances, owned.week_tiers, owned.charges))
