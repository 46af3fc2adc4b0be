import base64

from im_contracts import (
    BLOCKED_BY_SELLER_CREATOR_DETAIL,
    DeadLetter,
    EntryPoint,
    MessageKind,
    Sender,
    fan_out_command_id,
    new_event_id,
    utcnow,
)
from tests.contracts.examples import AT, EXAMPLES


def test_blocked_by_seller_detail_is_word_for_word():
    assert BLOCKED_BY_SELLER_CREATOR_DETAIL == "You cannot send messages to seller now as you are blocked by them."


def test_bulk_fans_out_one_seller_text_send_per_creator():
    bulk = EXAMPLES["BulkSendMessage"]

    sends = bulk.fan_out()

    assert [send.creator_id for send in sends] == list(bulk.creator_ids)
    for send in sends:
        assert send.command_id == fan_out_command_id(bulk.command_id, send.creator_id) == f"cmd-1:{send.creator_id}"
        assert send.bulk_id == bulk.command_id
        assert send.entry_point is EntryPoint.BULK
        assert send.sender is Sender.SELLER
        assert send.kind is MessageKind.TEXT
        assert send.text == bulk.text
        assert send.occurred_at == bulk.occurred_at


def test_dead_letter_keeps_utf8_payload_as_text():
    dead_letter = _dead_letter(b'{"type": "SendMessage"')

    assert dead_letter.payload_encoding == "utf-8"
    assert dead_letter.payload == '{"type": "SendMessage"'
    assert dead_letter.payload_bytes() == b'{"type": "SendMessage"'


def test_dead_letter_keeps_binary_payload_as_base64():
    raw = b"\xff\x00\xfe"

    dead_letter = _dead_letter(raw)

    assert dead_letter.payload_encoding == "base64"
    assert dead_letter.payload == base64.b64encode(raw).decode()
    assert dead_letter.payload_bytes() == raw


def test_new_event_ids_are_unique_hex():
    first, second = new_event_id(), new_event_id()

    assert first != second
    assert len(first) == 32 and int(first, 16) >= 0


def test_utcnow_is_timezone_aware():
    assert utcnow().utcoffset().total_seconds() == 0


def _dead_letter(value: bytes) -> DeadLetter:
    return DeadLetter.for_record(
        event_id="evt-dlq",
        occurred_at=AT,
        service="messaging",
        topic="im.send.admitted",
        partition=0,
        offset=12,
        key=b"seller_1:creator-42",
        value=value,
        error="boom",
    )
