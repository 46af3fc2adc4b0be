"""Messaging rules without I/O."""

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from im_contracts import (
    BulkSendCompleted,
    BulkSendMessage,
    MessageDelivered,
    ReasonCode,
    SendAdmitted,
    SendMessage,
    conversation_id,
    encode,
    fan_out_command_id,
)
from im_contracts.topics import SEND_DELIVERED

from services.common.outbox import Outgoing


def new_message_document(admitted: SendAdmitted, *, seq: int, message_id: str, event_id: str, delivered_at: datetime) -> dict[str, Any]:
    """The stored form of a delivered message: its MessageDelivered as the exact
    JSON first published (the database keeps times to the millisecond only, so
    an event rebuilt from fields would differ), plus the fields looked up by."""
    send = admitted.send
    event = MessageDelivered(
        event_id=event_id,
        occurred_at=delivered_at,
        command_id=send.command_id,
        message_id=message_id,
        conversation_id=conversation_id(send.seller_id, send.creator_id),
        seq=seq,
        seller_id=send.seller_id,
        creator_id=send.creator_id,
        sender=send.sender,
        kind=send.kind,
        text=send.text,
        card_id=send.card_id,
        bulk_id=send.bulk_id,
        entry_point=send.entry_point,
        sent_at=send.occurred_at,
        quota_charged=admitted.quota_charged,
    )
    return {
        "_id": send.command_id,
        "conversation_id": event.conversation_id,
        "seq": seq,
        "creator_id": send.creator_id,
        "bulk_id": send.bulk_id,
        "delivered": encode(event).decode(),
    }


def delivered_record(doc: dict[str, Any]) -> Outgoing:
    """The MessageDelivered of a stored message, byte for byte as first published (I1, I2)."""
    return Outgoing(topic=SEND_DELIVERED, key=doc["conversation_id"].encode(), value=doc["delivered"].encode())


def delivered_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """The fields of a stored message's MessageDelivered, as published."""
    return json.loads(doc["delivered"])


# --- bulk sends (R19) ----------------------------------------------------------

FAN_OUT_CHUNK = 100
"""Fan-out sends published together before the job notes its progress."""

DELIVERED = "delivered"
REJECTED = "rejected"


def bulk_job_document(bulk: BulkSendMessage, recorded_at: datetime) -> dict[str, Any]:
    """The stored bulk job. The command is kept as its exact JSON so every
    (re)published fan-out is byte-identical to the first, whoever publishes it."""
    return {
        "_id": bulk.command_id,
        "seller_id": bulk.seller_id,
        "creator_ids": list(bulk.creator_ids),
        "total": len(bulk.creator_ids),
        "command": bulk.model_dump_json(),
        "fanned_out": 0,
        "recorded_at": recorded_at,
    }


def fan_out_of(job: dict[str, Any]) -> tuple[SendMessage, ...]:
    """The per-creator sends of a stored job, in its creator order."""
    return BulkSendMessage.model_validate_json(job["command"]).fan_out()


def remaining_chunks(sends: Sequence[SendMessage], fanned_out: int, size: int = FAN_OUT_CHUNK) -> list[tuple[int, Sequence[SendMessage]]]:
    """The sends not yet published, cut into chunks, each with the progress
    count to note once it is durable: a restart resumes after the last note."""
    start = min(max(fanned_out, 0), len(sends))
    return [(min(i + size, len(sends)), sends[i : i + size]) for i in range(start, len(sends), size)]


def is_fan_out_of(job: dict[str, Any], command_id: str, creator_id: str | None) -> bool:
    """Only the job's own fan-outs count towards its summary."""
    return creator_id is not None and creator_id in job["creator_ids"] and command_id == fan_out_command_id(job["_id"], creator_id)


def fan_out_command_ids(job: dict[str, Any]) -> list[str]:
    return [fan_out_command_id(job["_id"], creator_id) for creator_id in job["creator_ids"]]


def outcome_document(command_id: str, bulk_id: str, creator_id: str, outcome: str, reason: str | None) -> dict[str, Any]:
    return {"_id": command_id, "bulk_id": bulk_id, "creator_id": creator_id, "outcome": outcome, "reason": reason}


def bulk_summary(job: dict[str, Any], outcomes: Iterable[dict[str, Any]], *, event_id: str, occurred_at: datetime) -> BulkSendCompleted | None:
    """BulkSendCompleted once every creator of the job has an outcome, else None."""
    by_creator = {o["creator_id"]: o for o in outcomes if o["creator_id"] in job["creator_ids"]}
    if len(by_creator) < job["total"]:
        return None
    rejected = Counter(ReasonCode(o["reason"]) for o in by_creator.values() if o["outcome"] == REJECTED)
    delivered = sum(1 for o in by_creator.values() if o["outcome"] == DELIVERED)
    return BulkSendCompleted(
        event_id=event_id,
        occurred_at=occurred_at,
        command_id=job["_id"],
        seller_id=job["seller_id"],
        total=job["total"],
        delivered=delivered,
        rejected=sum(rejected.values()),
        rejected_by_reason=dict(sorted(rejected.items())),
    )
