"""`make lag` (services.common.lag) against the real broker: every group of
the suite is listed per partition, and a handled send leaves no lag behind."""

import asyncio

import pytest

from im_contracts import SendMessage, new_event_id, utcnow
from im_contracts.topics import SEND_REQUESTED
from services.common.lag import group_lags, lag_by_group, render
from services.common.principals import OPS
from tests.harness import Suite, unique

pytestmark = pytest.mark.integration


async def test_lag_lists_every_group_and_drains_to_zero(suite: Suite) -> None:
    send = SendMessage(
        command_id=new_event_id(), occurred_at=utcnow(), seller_id=unique("s"), creator_id=unique("c"),
        sender="creator", text="hello",
    )
    await suite.publish(SEND_REQUESTED, send)
    await suite.observer.outcome_of(send.command_id)

    async def moderation_lag() -> int:
        rows = await group_lags(suite.kafka_as(OPS), prefix=f"{suite.prefix}.")
        return lag_by_group(rows).get(f"{suite.prefix}.moderation", -1)

    for _ in range(100):  # the offset is committed right after the outcome is acknowledged
        if await moderation_lag() == 0:
            break
        await asyncio.sleep(0.1)
    rows = await group_lags(suite.kafka_as(OPS), prefix=f"{suite.prefix}.")
    groups = {row.group for row in rows}
    assert {f"{suite.prefix}.moderation", f"{suite.prefix}.quota", f"{suite.prefix}.messaging"} <= groups
    assert lag_by_group(rows)[f"{suite.prefix}.moderation"] == 0
    assert all(row.lag >= 0 for row in rows)
    assert f"{suite.prefix}.moderation" in render(rows, per_partition=True)
    assert "total lag:" in render(rows, per_partition=False)
