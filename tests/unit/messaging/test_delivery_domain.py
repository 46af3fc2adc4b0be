"""A delivered message is stored as the exact MessageDelivered first published."""

from datetime import UTC, datetime

from im_contracts import MessageDelivered, SendAdmitted, SendMessage, encode
from im_contracts.topics import SEND_DELIVERED
from services.messaging.domain import delivered_fields, delivered_record, new_message_document

SENT = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
DELIVERED_AT = datetime(2026, 3, 1, 12, 0, 1, 987654, tzinfo=UTC)


def stored() -> dict:
    send = SendMessage(
        command_id="bulk-1:c1", occurred_at=SENT, seller_id="s1", creator_id="c1", sender="seller", text="hi", entry_point="bulk", bulk_id="bulk-1"
    )
    admitted = SendAdmitted(event_id="a1", occurred_at=SENT, command_id=send.command_id, send=send, quota_charged=True, connected=False)
    return new_message_document(admitted, seq=3, message_id="m1", event_id="e1", delivered_at=DELIVERED_AT)


def test_the_stored_message_republishes_byte_identical_with_microseconds() -> None:
    doc = stored()
    record = delivered_record(doc)
    assert (record.topic, record.key) == (SEND_DELIVERED, b"s1:c1")
    event = MessageDelivered.model_validate_json(record.value)
    assert encode(event) == record.value
    assert (event.sent_at, event.occurred_at, event.seq, event.quota_charged, event.entry_point) == (SENT, DELIVERED_AT, 3, True, "bulk")


def test_history_items_are_the_published_fields() -> None:
    doc = stored()
    fields = delivered_fields(doc)
    assert fields == MessageDelivered.model_validate_json(delivered_record(doc).value).model_dump(mode="json")
    assert (doc["_id"], doc["conversation_id"], doc["seq"], doc["bulk_id"], doc["creator_id"]) == ("bulk-1:c1", "s1:c1", 3, "bulk-1", "c1")
