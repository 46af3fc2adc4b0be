"""Each creator's list of conversations, readable by `_id` alone.

FerretDB v1 pushes down to SQL only a filter that is exactly `{"_id": <string>}`;
any other filter (`{"creator_id": ...}`) reads and decodes the whole collection.
A profile update must reach every row of its creator, so the rows of a creator
are listed in numbered slots: `creator_rows` holds `{_id: "<creator_id>#<n>",
conversation_id}` for n = 1, 2, 3… The unique `_id` insert decides who gets a
slot (FerretDB loses concurrent updates, never a unique-key conflict):

- a claim starts just above the creator's head hint (`creator_row_heads`:
  `{_id: creator_id, n}`, raised with `$max` after each claim) and walks up on
  DuplicateKeyError. A slot is only tried once every slot below it, from the
  hint down, was found taken, so the slots of a creator are always a contiguous
  run 1..M, and the hint never exceeds M (it may lag: a crash before raising it,
  or a `$max` lost to a concurrent one);
- `slotted_conversations` holds `{_id: conversation_id}` once the conversation
  has its slot, so a redelivered first event does not claim another one;
- the projector claims the slot, then inserts the marker, then saves the row:
  a crash in between leaves at worst a duplicate slot (listing dedups) or a
  slot whose row does not exist yet (listing returns it; callers skip missing
  rows), never a row without a slot.

Listing reads slots #1, #2, … by `_id`, a batch at a time, until a batch has a
missing slot above the hint: by contiguity no slot above a missing one existed
when the listing started.

This module holds the pure parts (slot ids, the walk, the rebuild's numbering).
"""

from collections.abc import Awaitable, Callable, Iterable

SLOT_BATCH = 64


def slot_id(creator_id: str, n: int) -> str:
    return f"{creator_id}#{n}"


ReadSlots = Callable[[list[int]], Awaitable[dict[int, str]]]
"""Reads the given slot numbers of one creator: number -> conversation id, for the slots that exist."""


async def walk_slots(read: ReadSlots, hint: int, batch: int = SLOT_BATCH) -> list[str]:
    """The conversation ids in slots 1, 2, … of one creator, each once, in slot order.

    Batches of `batch` numbers are read one after another; the walk ends after
    the first batch with a missing slot above `hint` (slots up to the hint exist;
    one missing below it is skipped, not taken as the end)."""
    found: dict[str, None] = {}
    start = 1
    while True:
        numbers = list(range(start, start + batch))
        slots = await read(numbers)
        for n in numbers:
            if n in slots:
                found.setdefault(slots[n])
        if any(n not in slots and n > hint for n in numbers):
            return list(found)
        start += batch


def assign_slots(rows: Iterable[tuple[str, str]], heads: dict[str, int]) -> list[tuple[str, int, str]]:
    """Slots for (creator_id, conversation_id) pairs new to a fresh database, numbered
    on from `heads` (creator -> last number used), which is updated in place.
    Returns (creator_id, n, conversation_id) per pair."""
    assigned = []
    for creator_id, conversation in rows:
        n = heads.get(creator_id, 0) + 1
        heads[creator_id] = n
        assigned.append((creator_id, n, conversation))
    return assigned
