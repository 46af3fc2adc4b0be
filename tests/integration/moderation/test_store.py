"""The versioned moderation state on the real database, under concurrency that
Kafka's per-key ordering normally prevents (a rebalance overlapping the old
owner): each version is won by one conditional update, so no change is lost or doubled."""

import asyncio
import random
from datetime import timedelta

import pytest

from im_contracts import BlockCreator, UnblockCreator, parse, utcnow
from im_contracts.topics import MODERATION_EVENTS
from tests.harness import Suite, unique

from services.moderation.domain import BLOCKED, UNBLOCKED, seller_blocks_creator
from services.moderation.store import ModerationStore

pytestmark = pytest.mark.integration


@pytest.fixture
def store(suite: Suite) -> ModerationStore:
    return ModerationStore(suite.runtimes["moderation"].db)


@pytest.mark.parametrize("round_", range(5))
async def test_one_command_applied_concurrently_changes_once(store: ModerationStore, round_: int) -> None:
    seller, creator = unique("s"), unique("c")
    command = BlockCreator(command_id=unique("mod"), occurred_at=utcnow(), seller_id=seller, creator_id=creator)
    decisions = await asyncio.gather(*(store.apply(command) for _ in range(10)))
    assert {d.outcome for d in decisions} == {"BlockCreator:changed"}
    assert len({d.outgoing for d in decisions}) == 1  # the very same event bytes
    history = await store.history_of(seller_blocks_creator(seller, creator))
    assert [v["command_id"] for v in history].count(command.command_id) == 1
    assert await store.state_of(seller_blocks_creator(seller, creator)) == BLOCKED


async def test_racing_commands_leave_the_newest_state_and_a_consistent_history(store: ModerationStore) -> None:
    seller, creator = unique("s"), unique("c")
    start = utcnow()
    commands = [
        (BlockCreator if i % 2 == 0 else UnblockCreator)(
            command_id=unique("mod"), occurred_at=start + timedelta(milliseconds=i), seller_id=seller, creator_id=creator
        )
        for i in range(24)
    ]
    deliveries = random.sample(commands * 3, len(commands) * 3)  # each command delivered three times
    decisions = await asyncio.gather(*(store.apply(c) for c in deliveries))
    by_command: dict[str, set] = {}
    for delivered, decision in zip(deliveries, decisions):
        by_command.setdefault(delivered.command_id, set()).add((decision.outcome, decision.outgoing))
    assert all(len(seen) == 1 for seen in by_command.values())  # one decision per command, however delivered
    published = [record for seen in by_command.values() for _, outgoing in seen for record in outgoing]

    newest = commands[-1]
    assert await store.state_of(seller_blocks_creator(seller, creator)) == (BLOCKED if isinstance(newest, BlockCreator) else UNBLOCKED)
    history = await store.history_of(seller_blocks_creator(seller, creator))
    assert [v["version"] for v in history] == list(range(1, len(history) + 1))  # no gaps, no doubles
    assert [v["as_of_us"] for v in history] == sorted(v["as_of_us"] for v in history)  # time never goes back
    states = [v["state"] for v in history if v["verdict"] == "changed"]
    assert all(a != b for a, b in zip(states, states[1:]))  # every event is a real change
    assert len(published) == len(states)
    assert all(parse(MODERATION_EVENTS, record.value).type in {"CreatorBlocked", "CreatorUnblocked"} for record in published)


async def test_a_subject_never_touched_has_its_initial_state_and_each_change_is_kept(store: ModerationStore) -> None:
    seller, creator, start = unique("s"), unique("c"), utcnow()
    subject = seller_blocks_creator(seller, creator)
    assert await store.state_of(subject) == UNBLOCKED and await store.history_of(subject) == []

    for i, kind in enumerate((BlockCreator, UnblockCreator, BlockCreator)):
        await store.apply(kind(command_id=unique("mod"), occurred_at=start + timedelta(seconds=i), seller_id=seller, creator_id=creator))
    assert await store.state_of(subject) == BLOCKED
    unblock = UnblockCreator(command_id=unique("mod"), occurred_at=start + timedelta(seconds=9), seller_id=seller, creator_id=creator)
    assert (await store.apply(unblock)).outcome == "UnblockCreator:changed"
    assert await store.state_of(subject) == UNBLOCKED
    history = await store.history_of(subject)
    assert [v["version"] for v in history] == [1, 2, 3, 4]
