"""Messaging rules without I/O."""

from datetime import datetime
from typing import Any

from im_contracts import MessageDelivered, SendAdmitted, conversation_id

from services.common.mongo import stored_time


def new_message_document(admitted: SendAdmitted, *, seq: int, message_id: str, event_id: str, delivered_at: datetime) -> dict[str, Any]:
    """The stored form of a delivered message; MessageDelivered is rebuilt from it,
    so a replay publishes exactly what the first delivery did."""
    send = admitted.send
    return {
        "_id": send.command_id,
        "message_id": message_id,
        "event_id": event_id,
        "delivered_at": stored_time(delivered_at),
        "conversation_id": conversation_id(send.seller_id, send.creator_id),
        "seq": seq,
        "seller_id": send.seller_id,
        "creator_id": send.creator_id,
        "sender": str(send.sender),
        "kind": str(send.kind),
        "text": send.text,
        "card_id": send.card_id,
        "bulk_id": send.bulk_id,
        "entry_point": str(send.entry_point),
        "sent_at": stored_time(send.occurred_at),
        "quota_charged": admitted.quota_charged,
    }


def delivered_event(doc: dict[str, Any]) -> MessageDelivered:
    return MessageDelivered(
        event_id=doc["event_id"],
        occurred_at=doc["delivered_at"],
        command_id=doc["_id"],
        message_id=doc["message_id"],
        conversation_id=doc["conversation_id"],
        seq=doc["seq"],
        seller_id=doc["seller_id"],
        creator_id=doc["creator_id"],
        sender=doc["sender"],
        kind=doc["kind"],
        text=doc["text"],
        card_id=doc.get("card_id"),
        bulk_id=doc.get("bulk_id"),
        entry_point=doc["entry_point"],
        sent_at=doc["sent_at"],
        quota_charged=doc["quota_charged"],
    )
