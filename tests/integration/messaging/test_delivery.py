"""Delivery numbering stays gapless when a command is redelivered after taking
its seq, and when deliveries of one command race (R1, I5)."""

import asyncio

import pytest

from im_contracts import SendAdmitted, new_event_id, utcnow
from im_contracts.topics import SEND_REQUESTED

from services.messaging.store import MessageStore
from tests.harness import Suite, unique
from tests.integration.inbox_projection.support import converse, send

pytestmark = pytest.mark.integration


async def test_a_seq_taken_before_a_crash_is_stored_by_the_redelivery_without_a_gap_or_a_duplicate(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    counters = suite.runtimes["messaging"].db["conversation_counters"]
    conversation = f"{seller}:{creator}"
    assert [d.seq for d in await converse(suite, seller, creator, "creator", "seller")] == [1, 2]

    crashed = send(seller, creator, "creator", text="taken, never stored")  # killed after taking seq 3
    await counters.update_one({"_id": conversation}, {"$set": {"seq": 3, "taken": [[crashed.command_id, 3]]}})
    await suite.publish(SEND_REQUESTED, crashed)
    assert (await suite.observer.outcome_of(crashed.command_id)).seq == 3
    assert [d.seq for d in await converse(suite, seller, creator, "seller", "creator")] == [4, 5]
    assert (await counters.find_one({"_id": conversation}))["seq"] == 5


async def test_racing_deliveries_store_each_command_once_under_consecutive_seqs(suite: Suite) -> None:
    """Commands of one conversation racing each other (a rebalance overlapping the old
    owner), then each command's deliveries racing each other (a redelivery overlapping
    the original): one message per command, seqs 1..n."""
    store = MessageStore(suite.runtimes["messaging"].db)
    seller, creator = unique("s"), unique("c")
    conversation = f"{seller}:{creator}"

    def admitted(i: int) -> SendAdmitted:
        command = send(seller, creator, "seller", text=f"m{i}")
        return SendAdmitted(event_id=new_event_id(), occurred_at=utcnow(), command_id=command.command_id, send=command,
                            quota_charged=False, connected=True)

    async def deliver(command: SendAdmitted) -> dict:
        (doc,) = await store.deliver_each([command])
        return doc

    racing = await asyncio.gather(*(deliver(admitted(i)) for i in range(6)))
    assert sorted(doc["seq"] for doc in racing) == list(range(1, 7))
    for i in range(6, 10):
        once = admitted(i)
        deliveries = await asyncio.gather(*(deliver(once) for _ in range(5)))
        assert {doc["seq"] for doc in deliveries} == {i + 1} and len({doc["delivered"] for doc in deliveries}) == 1
    assert await store.messages.count_documents({"conversation_id": conversation}) == 10


async def test_one_batch_numbers_its_conversations_in_order_and_a_replayed_batch_gets_the_same_messages(suite: Suite) -> None:
    store = MessageStore(suite.runtimes["messaging"].db)
    seller, creators = unique("s"), [unique("c") for _ in range(3)]

    def admitted(creator: str, i: int) -> SendAdmitted:
        command = send(seller, creator, "seller", text=f"m{i}")
        return SendAdmitted(event_id=new_event_id(), occurred_at=utcnow(), command_id=command.command_id, send=command,
                            quota_charged=False, connected=True)

    batch = [admitted(creators[i % 3], i) for i in range(12)]
    docs = await store.deliver_each(batch + batch[:2])
    assert [doc["seq"] for doc in docs[:12]] == [i // 3 + 1 for i in range(12)]
    assert docs[12:] == docs[:2]
    replayed = await asyncio.gather(store.deliver_each(batch), store.deliver_each(list(reversed(batch))))
    assert replayed[0] == docs[:12] and replayed[1] == list(reversed(docs[:12]))


async def test_many_conversations_at_once_each_count_from_one(suite: Suite) -> None:
    seller = unique("s")
    creators = [unique("c") for _ in range(10)]
    deliveries = await asyncio.gather(*(converse(suite, seller, c, "creator", "seller", "creator") for c in creators))
    assert all([d.seq for d in conv] == [1, 2, 3] for conv in deliveries)


async def test_a_counter_held_by_one_owner_and_advanced_by_another_is_read_again(suite: Suite) -> None:
    """Two owners of one conversation in turn (a rebalance overlapping the old owner):
    the counter the first one holds is behind, so its next seqs are taken from the store."""
    db = suite.runtimes["messaging"].db
    first, second = MessageStore(db), MessageStore(db)
    seller, creator = unique("s"), unique("c")

    def admitted(i: int) -> SendAdmitted:
        command = send(seller, creator, "seller", text=f"m{i}")
        return SendAdmitted(event_id=new_event_id(), occurred_at=utcnow(), command_id=command.command_id, send=command,
                            quota_charged=False, connected=True)

    seqs = []
    for owner in (first, first, second, second, first, second, first):
        (doc,) = await owner.deliver_each([admitted(len(seqs))])
        seqs.append(doc["seq"])
    assert seqs == list(range(1, 8))
