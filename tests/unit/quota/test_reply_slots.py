"""R9's count: each admitted seller message is counted once among the first
`reply_cap + 1` of its conversation. Property: whatever the deliveries —
concurrent, duplicated, redelivered — a command is counted at most once, nobody
is left out while there is room, and the count that excludes any command equals
a scan's (admitted seller messages of other commands, up to the cap)."""

import asyncio
import random
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.quota.domain import ReplySlots
from tests.unit.quota.fakes import InMemoryQuotaStore

AT = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
CONVERSATION = "s:c"


def test_count_excludes_the_command_and_saturates_at_the_cap() -> None:
    slots = ReplySlots(("a", "b", None, None, None, None))  # reply cap 5
    assert (slots.count(), slots.count("a"), slots.count("z")) == (2, 1, 2)
    assert (slots.held_by("b"), slots.held_by("z"), slots.first_free()) == (2, None, 3)
    full = ReplySlots(tuple("abcdef"))
    assert (full.count(), full.count("a"), full.count("z"), full.first_free()) == (5, 5, 5, None)
    assert ReplySlots((None,)).count() == 0 and ReplySlots(("a",)).count() == 0  # reply cap 0
    assert ReplySlots.of(["a", "b"], 4) == ReplySlots(("a", "b", None, None))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 4),
    st.lists(st.lists(st.integers(0, 9), min_size=1, max_size=6), min_size=1, max_size=6),
    st.randoms(use_true_random=False),
)
def test_slots_count_each_admitted_command_once(cap: int, batches: list[list[int]], rng: random.Random) -> None:
    asyncio.run(_run(cap, batches, rng))


async def _run(cap: int, batches: list[list[int]], rng: random.Random) -> None:
    store = InMemoryQuotaStore(rng=rng)
    recorded: set[str] = set()

    async def deliver(command: str) -> None:
        await store.count_seller_message(CONVERSATION, command, cap + 1)

    for batch in batches:  # a batch is delivered concurrently; a repeated number is a duplicate delivery
        commands = [f"cmd-{i}" for i in batch]
        await asyncio.gather(*(deliver(c) for c in commands))
        recorded |= set(commands)

        counted = store.counted.get(CONVERSATION, [])
        assert len(set(counted)) == len(counted)  # no command counted twice
        assert len(counted) == min(cap + 1, len(recorded))  # nobody left out while there was room
        slots = ReplySlots.of(counted, cap + 1)
        for command in [f"cmd-{i}" for i in range(10)]:
            others = len(recorded - {command})
            assert slots.count(command) == min(cap, others)
