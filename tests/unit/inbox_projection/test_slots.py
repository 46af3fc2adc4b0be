"""The walk over a creator's slots and the rebuild's slot numbering (slots.py)."""

import asyncio

import pytest

from services.inbox_projection.slots import assign_slots, slot_id, walk_slots


class Slots:
    """One creator's slots in memory; records which numbers each batch read."""

    def __init__(self, slots: dict[int, str]) -> None:
        self.slots = slots
        self.batches: list[list[int]] = []

    async def read(self, numbers: list[int]) -> dict[int, str]:
        self.batches.append(numbers)
        return {n: self.slots[n] for n in numbers if n in self.slots}


def walk(slots: Slots, hint: int, batch: int = 4) -> list[str]:
    return asyncio.run(walk_slots(slots.read, hint, batch))


def test_no_slots_reads_one_batch() -> None:
    slots = Slots({})
    assert walk(slots, hint=0) == []
    assert slots.batches == [[1, 2, 3, 4]]


def test_reads_every_slot_in_order_until_a_batch_has_a_gap() -> None:
    slots = Slots({n: f"conv{n}" for n in range(1, 10)})
    assert walk(slots, hint=3) == [f"conv{n}" for n in range(1, 10)]
    assert slots.batches == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]


def test_a_full_last_batch_needs_one_more_batch_to_end() -> None:
    slots = Slots({n: f"conv{n}" for n in range(1, 9)})
    assert walk(slots, hint=8) == [f"conv{n}" for n in range(1, 9)]
    assert len(slots.batches) == 3


def test_a_lagging_hint_still_finds_the_slots_above_it() -> None:
    slots = Slots({n: f"conv{n}" for n in range(1, 7)})
    assert walk(slots, hint=0) == [f"conv{n}" for n in range(1, 7)]


def test_a_missing_slot_at_or_below_the_hint_does_not_end_the_walk() -> None:
    slots = Slots({1: "a", 3: "b", 4: "c", 5: "d", 6: "e"})
    assert walk(slots, hint=5) == ["a", "b", "c", "d", "e"]
    assert slots.batches == [[1, 2, 3, 4], [5, 6, 7, 8]]


def test_duplicate_slots_of_one_conversation_are_listed_once() -> None:
    slots = Slots({1: "a", 2: "b", 3: "a", 4: "c", 5: "b"})
    assert walk(slots, hint=5) == ["a", "b", "c"]


@pytest.mark.parametrize("creator", ["c1", "c#1", "with:colon"])
def test_slot_ids_are_the_creator_and_the_number(creator: str) -> None:
    assert slot_id(creator, 7) == f"{creator}#7"


def test_the_rebuild_numbers_each_creators_slots_on_from_its_head() -> None:
    heads: dict[str, int] = {}
    first = assign_slots([("c1", "s1:c1"), ("c2", "s1:c2"), ("c1", "s2:c1")], heads)
    assert first == [("c1", 1, "s1:c1"), ("c2", 1, "s1:c2"), ("c1", 2, "s2:c1")]
    second = assign_slots([("c1", "s3:c1"), ("c3", "s1:c3")], heads)
    assert second == [("c1", 3, "s3:c1"), ("c3", 1, "s1:c3")]
    assert heads == {"c1": 3, "c2": 1, "c3": 1}
