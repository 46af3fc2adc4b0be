"""The send pipeline end to end through real Kafka and the real database:
delivery with seq, idempotent redelivery, poison isolation (issue 2)."""

import pytest

from im_contracts import SendMessage, utcnow
from im_contracts.topics import DLQ, SEND_DELIVERED, SEND_REJECTED, SEND_REQUESTED
from tests.harness import Suite, unique

pytestmark = pytest.mark.integration


def send(seller: str, creator: str, text: str = "hello", sender: str = "seller", **extra) -> SendMessage:
    return SendMessage(
        command_id=unique("cmd"), occurred_at=utcnow(), seller_id=seller, creator_id=creator, sender=sender, text=text, **extra
    )


async def test_send_is_delivered_with_seq_and_readable(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    first, second = send(seller, creator, sender="creator", text="hi"), send(seller, creator, text="welcome")
    await suite.publish(SEND_REQUESTED, first)
    assert (await suite.observer.outcome_of(first.command_id)).seq == 1
    await suite.publish(SEND_REQUESTED, second)
    delivered = await suite.observer.outcome_of(second.command_id)
    assert delivered.type == "MessageDelivered"
    assert (delivered.seq, delivered.conversation_id, delivered.text) == (2, f"{seller}:{creator}", "welcome")

    async with suite.http("messaging") as http:
        page = (await http.get(f"/v1/conversations/{seller}/{creator}/messages")).json()
    assert [m["seq"] for m in page["items"]] == [2, 1]
    assert page["items"][0]["message_id"] == delivered.message_id
    assert page["next_before_seq"] is None


async def test_same_command_three_times_stores_one_message(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    command = send(seller, creator, sender="creator")
    for _ in range(3):
        await suite.publish(SEND_REQUESTED, command)
    follow_up = send(seller, creator, sender="creator", text="after")
    await suite.publish(SEND_REQUESTED, follow_up)
    assert (await suite.observer.outcome_of(follow_up.command_id)).seq == 2

    outcomes = suite.observer.messages(SEND_DELIVERED, lambda m: m.command_id == command.command_id)
    assert {m.seq for m in outcomes} == {1}
    replays = {o.value for o in suite.observer.records[SEND_DELIVERED] if o.message and o.message.command_id == command.command_id}
    assert len(replays) == 1, "a redelivered command must republish identical bytes"
    assert not suite.observer.messages(SEND_REJECTED, lambda m: m.command_id == command.command_id)
    stored = await suite.runtimes["messaging"].db["messages"].count_documents({"conversation_id": f"{seller}:{creator}"})
    assert stored == 2


async def test_garbage_goes_to_dlq_and_the_next_command_is_delivered(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    garbage = f"not json {unique('g')}".encode()
    await suite.publish_raw(SEND_REQUESTED, garbage, key=f"{seller}:{creator}".encode())
    valid = send(seller, creator, sender="creator")
    await suite.publish(SEND_REQUESTED, valid)

    assert (await suite.observer.outcome_of(valid.command_id)).type == "MessageDelivered"
    letter = await suite.observer.wait_for(DLQ, lambda m: m.payload == garbage.decode())
    assert letter[0].service == "moderation" and letter[0].topic == SEND_REQUESTED
    assert "not JSON" in letter[0].error


async def test_schema_violation_with_readable_command_id_is_rejected_invalid(suite: Suite) -> None:
    command_id = unique("cmd")
    bad = {"type": "SendMessage", "command_id": command_id, "occurred_at": utcnow().isoformat(), "seller_id": "bad id!", "creator_id": "c1", "sender": "seller", "text": "x"}
    import json

    await suite.publish_raw(SEND_REQUESTED, json.dumps(bad).encode(), key=b"k")
    rejected = await suite.observer.outcome_of(command_id)
    assert (rejected.type, rejected.reason, rejected.stage) == ("MessageRejected", "INVALID_COMMAND", "moderation")
    await suite.observer.wait_for(DLQ, lambda m: m.command_id == command_id)
