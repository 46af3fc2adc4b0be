"""Kafka record keys and headers.

The key decides the partition, and so which records a consumer sees in order:

- conversation-scoped types (both parties named: sends and their outcomes, blocks,
  inbox commands, card commands and events, connections) use `conversation_id`, so
  everything about one conversation stays in order (R1, R5, I5);
- seller-scoped types (bulk, seller access, GMV, the outreach ledger, sample reviews —
  whose creator may be unknown — and the internal `SendScreened`, so that one quota
  consumer owns a seller's allowance, week tier and conversations: a seller's
  conversations stay in order within the seller's partition) use `seller_id`;
- creator-scoped types (creator profiles) use `creator_id`;
- `DeadLetter` reuses the original record's key, or the failing service's name.

An `INVALID_COMMAND` rejection that could not read both parties falls back to its
`command_id`. The scope is fixed per type, never chosen by which fields happen to be set.
"""

from enum import StrEnum

from .base import ContractModel, conversation_id
from .bulk import BulkSendCompleted, BulkSendMessage
from .collaboration import (
    CardDelivered,
    CardRejected,
    RequestSample,
    RespondToTargetCollaboration,
    ReviewSampleRequest,
    SampleRequestApproved,
    SampleRequested,
    SampleRequestRejected,
    SampleReviewFailed,
    SendProductCard,
    SendTargetCollaboration,
    TargetCollaborationAccepted,
    TargetCollaborationDeclined,
)
from .directory import CreatorConnected, CreatorProfileUpdated, SellerGmvUpdated
from .dlq import DeadLetter
from .inbox import (
    ArchiveConversation,
    MarkConversationRead,
    StarConversation,
    UnarchiveConversation,
    UnstarConversation,
)
from .internal import SendAdmitted, SendScreened
from .moderation import (
    BlockCreator,
    BlockSeller,
    CreatorBlocked,
    CreatorUnblocked,
    SellerAccessChanged,
    SellerBlocked,
    SellerUnblocked,
    SetSellerAccess,
    UnblockCreator,
    UnblockSeller,
)
from .quota import OutreachCharged
from .send import MessageDelivered, MessageRejected, SendMessage

__all__ = ["CORRELATION_ID_HEADER", "KeyScope", "conversation_id", "kafka_headers", "kafka_key", "key_scope"]

CORRELATION_ID_HEADER = "correlation_id"


class KeyScope(StrEnum):
    """What a type's Kafka key is made of."""

    CONVERSATION = "conversation_id"
    SELLER = "seller_id"
    CREATOR = "creator_id"
    ORIGINAL_KEY = "original_key"


_CONVERSATION_SCOPED = (
    SendMessage,
    SendAdmitted,
    MessageDelivered,
    MessageRejected,
    BlockCreator,
    UnblockCreator,
    BlockSeller,
    UnblockSeller,
    CreatorBlocked,
    CreatorUnblocked,
    SellerBlocked,
    SellerUnblocked,
    StarConversation,
    UnstarConversation,
    ArchiveConversation,
    UnarchiveConversation,
    MarkConversationRead,
    SendProductCard,
    SendTargetCollaboration,
    RespondToTargetCollaboration,
    RequestSample,
    CardDelivered,
    CardRejected,
    TargetCollaborationAccepted,
    TargetCollaborationDeclined,
    SampleRequested,
    SampleRequestApproved,
    SampleRequestRejected,
    CreatorConnected,
)
_SELLER_SCOPED = (
    SendScreened,
    BulkSendMessage,
    BulkSendCompleted,
    SetSellerAccess,
    SellerAccessChanged,
    SellerGmvUpdated,
    OutreachCharged,
    ReviewSampleRequest,
    SampleReviewFailed,
)
_CREATOR_SCOPED = (CreatorProfileUpdated,)

_SCOPE_BY_MODEL: dict[type[ContractModel], KeyScope] = {
    **dict.fromkeys(_CONVERSATION_SCOPED, KeyScope.CONVERSATION),
    **dict.fromkeys(_SELLER_SCOPED, KeyScope.SELLER),
    **dict.fromkeys(_CREATOR_SCOPED, KeyScope.CREATOR),
    DeadLetter: KeyScope.ORIGINAL_KEY,
}


def key_scope(model: type[ContractModel]) -> KeyScope:
    return _SCOPE_BY_MODEL[model]


def kafka_key(message: ContractModel) -> bytes:
    """The record key to publish `message` with (see the module docstring for the rule)."""
    if isinstance(message, DeadLetter):
        return (message.key or message.service).encode("utf-8")
    scope = key_scope(type(message))
    subject = message.send if isinstance(message, (SendScreened, SendAdmitted)) else message
    if scope is KeyScope.SELLER:
        return subject.seller_id.encode("utf-8")
    if scope is KeyScope.CREATOR:
        return subject.creator_id.encode("utf-8")
    if subject.seller_id is None or subject.creator_id is None:
        return subject.command_id.encode("utf-8")
    return conversation_id(subject.seller_id, subject.creator_id).encode("utf-8")


def kafka_headers(correlation_id: str) -> list[tuple[str, bytes]]:
    """Headers for a produced record; `correlation_id` follows a request across services."""
    return [(CORRELATION_ID_HEADER, correlation_id.encode("utf-8"))]
