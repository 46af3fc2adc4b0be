"""Dead letters: a message that can never be handled goes to im.dlq with its
error and original bytes, so the consumer can commit it and go on (I3)."""

from typing import Any

from im_contracts import DeadLetter, new_event_id, utcnow

from services.common.outbox import Outgoing
from im_contracts.topics import DLQ


def dead_letter_for(*, service: str, record: Any, error: str, command_id: str | None = None) -> Outgoing:
    """The DeadLetter record for a raw aiokafka ConsumerRecord."""
    letter = DeadLetter.for_record(
        event_id=new_event_id(),
        occurred_at=utcnow(),
        service=service,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value or b"",
        error=error[:4000],
        command_id=command_id,
    )
    # Keyed like the original so one conversation's letters stay in order.
    return Outgoing(topic=DLQ, key=record.key or service.encode(), value=letter.model_dump_json().encode())
