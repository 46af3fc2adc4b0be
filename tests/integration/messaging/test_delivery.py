"""Delivery numbering stays gapless when the last-seq hint lags (R1, I5)."""

import asyncio

import pytest

from tests.harness import Suite, unique
from tests.integration.inbox_projection.support import converse

pytestmark = pytest.mark.integration


async def test_a_lagging_or_lost_seq_hint_never_makes_a_gap_or_a_duplicate(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    heads = suite.runtimes["messaging"].db["conversation_heads"]
    conversation = f"{seller}:{creator}"
    assert [d.seq for d in await converse(suite, seller, creator, "creator", "seller")] == [1, 2]

    await heads.update_one({"_id": conversation}, {"$set": {"seq": 1}})  # lost update: behind by one
    assert [d.seq for d in await converse(suite, seller, creator, "creator")] == [3]
    await heads.delete_one({"_id": conversation})  # lost entirely
    assert [d.seq for d in await converse(suite, seller, creator, "seller", "creator")] == [4, 5]
    assert (await heads.find_one({"_id": conversation}))["seq"] == 5


async def test_many_conversations_at_once_each_count_from_one(suite: Suite) -> None:
    seller = unique("s")
    creators = [unique("c") for _ in range(10)]
    deliveries = await asyncio.gather(*(converse(suite, seller, c, "creator", "seller", "creator") for c in creators))
    assert all([d.seq for d in conv] == [1, 2, 3] for conv in deliveries)
