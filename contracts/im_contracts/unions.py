"""What each topic may carry, and how to turn bytes into a model and back.

Consumers call `parse(topic, record.value)`; a `ContractError` means the record belongs
on the dead-letter topic (I3). Producers call `encode(message)` and `topic_of(message)`.
"""

import json
from typing import Annotated, Any, Union, get_args

from pydantic import Field, TypeAdapter, ValidationError

from . import topics
from .base import MAX_ID_LENGTH, ContractModel
from .bulk import BulkSendCompleted, BulkSendMessage
from .collaboration import (
    CardDelivered,
    CardRejected,
    ReviewSampleRequest,
    RequestSample,
    RespondToTargetCollaboration,
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

_BY_TYPE = Field(discriminator="type")

SendRequestedMessage = Annotated[Union[SendMessage], _BY_TYPE]
SendScreenedMessage = Annotated[Union[SendScreened], _BY_TYPE]
SendAdmittedMessage = Annotated[Union[SendAdmitted], _BY_TYPE]
SendDeliveredMessage = Annotated[Union[MessageDelivered], _BY_TYPE]
SendRejectedMessage = Annotated[Union[MessageRejected], _BY_TYPE]
BulkRequestedMessage = Annotated[Union[BulkSendMessage], _BY_TYPE]
BulkCompletedMessage = Annotated[Union[BulkSendCompleted], _BY_TYPE]
ModerationCommand = Annotated[
    Union[BlockCreator, UnblockCreator, BlockSeller, UnblockSeller, SetSellerAccess], _BY_TYPE
]
ModerationEvent = Annotated[
    Union[CreatorBlocked, CreatorUnblocked, SellerBlocked, SellerUnblocked, SellerAccessChanged], _BY_TYPE
]
InboxCommand = Annotated[
    Union[StarConversation, UnstarConversation, ArchiveConversation, UnarchiveConversation, MarkConversationRead],
    _BY_TYPE,
]
CollaborationCommand = Annotated[
    Union[SendProductCard, SendTargetCollaboration, RespondToTargetCollaboration, RequestSample, ReviewSampleRequest],
    _BY_TYPE,
]
CollaborationEvent = Annotated[
    Union[
        CardDelivered,
        CardRejected,
        TargetCollaborationAccepted,
        TargetCollaborationDeclined,
        SampleRequested,
        SampleRequestApproved,
        SampleRequestRejected,
        SampleReviewFailed,
    ],
    _BY_TYPE,
]
DirectoryEvent = Annotated[Union[SellerGmvUpdated, CreatorProfileUpdated, CreatorConnected], _BY_TYPE]
QuotaEvent = Annotated[Union[OutreachCharged], _BY_TYPE]
DeadLetterMessage = Annotated[Union[DeadLetter], _BY_TYPE]

TOPIC_TYPES: dict[str, Any] = {
    topics.SEND_REQUESTED: SendRequestedMessage,
    topics.SEND_SCREENED: SendScreenedMessage,
    topics.SEND_ADMITTED: SendAdmittedMessage,
    topics.SEND_DELIVERED: SendDeliveredMessage,
    topics.SEND_REJECTED: SendRejectedMessage,
    topics.BULK_REQUESTED: BulkRequestedMessage,
    topics.BULK_COMPLETED: BulkCompletedMessage,
    topics.MODERATION_COMMANDS: ModerationCommand,
    topics.MODERATION_EVENTS: ModerationEvent,
    topics.INBOX_COMMANDS: InboxCommand,
    topics.COLLABORATION_COMMANDS: CollaborationCommand,
    topics.COLLABORATION_EVENTS: CollaborationEvent,
    topics.DIRECTORY_EVENTS: DirectoryEvent,
    topics.QUOTA_EVENTS: QuotaEvent,
    topics.DLQ: DeadLetterMessage,
}
"""Topic → the annotated union of the types it carries."""

TOPIC_ADAPTERS: dict[str, TypeAdapter[Any]] = {topic: TypeAdapter(union) for topic, union in TOPIC_TYPES.items()}


def _members(union: Any) -> tuple[type[ContractModel], ...]:
    tagged_union, _discriminator = get_args(union)
    return get_args(tagged_union) or (tagged_union,)


TOPIC_MODELS: dict[str, tuple[type[ContractModel], ...]] = {
    topic: _members(union) for topic, union in TOPIC_TYPES.items()
}
"""Topic → its model classes, in the order DESIGN §4 lists them."""

MODEL_BY_TYPE: dict[str, type[ContractModel]] = {
    model.model_fields["type"].default: model for models in TOPIC_MODELS.values() for model in models
}
TOPIC_BY_TYPE: dict[str, str] = {
    model.model_fields["type"].default: topic for topic, models in TOPIC_MODELS.items() for model in models
}
"""Each type travels on exactly one topic."""


class ContractError(ValueError):
    """A record body that is not valid for its topic.

    Carries whatever could still be read, so a consumer can dead-letter the record and,
    for a `SendMessage`, still answer `INVALID_COMMAND` to its `command_id` (I3).
    """

    def __init__(self, topic: str, problem: str, *, body: dict[str, Any] | None = None) -> None:
        self.topic = topic
        self.body = body
        self.type_name = _readable_str(body, "type")
        command_id = _readable_str(body, "command_id")
        self.command_id = command_id if command_id and len(command_id) <= MAX_ID_LENGTH else None
        subject = f"invalid {self.type_name}" if self.type_name else "invalid body"
        super().__init__(f"{topic}: {subject}: {problem}")


def _readable_str(body: dict[str, Any] | None, field: str) -> str | None:
    value = (body or {}).get(field)
    return value if isinstance(value, str) and value else None


def _best_effort_body(raw: bytes | str | dict[str, Any]) -> dict[str, Any] | None:
    if isinstance(raw, dict):
        return raw
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser recurses
        return None
    return body if isinstance(body, dict) else None


def _describe(error: ValidationError, type_name: str | None) -> str:
    """One line per problem, `field.path: message`, without pydantic's union-tag noise."""
    problems = []
    for detail in error.errors(include_url=False):
        location = list(detail["loc"])
        if location and location[0] == type_name:
            location = location[1:]
        path = ".".join(str(part) for part in location)
        problems.append(f"{path}: {detail['msg']}" if path else detail["msg"])
    return "; ".join(problems)


def parse(topic: str, raw: bytes | str | dict[str, Any]) -> ContractModel:
    """Validates a record body against its topic's union.

    Raises `ContractError` for a bad body and `ValueError` for a topic this contract does
    not know (a configuration mistake, not bad input).
    """
    adapter = TOPIC_ADAPTERS.get(topic)
    if adapter is None:
        raise ValueError(f"unknown topic {topic!r}; known topics: {', '.join(topics.ALL_TOPICS)}")
    try:
        if isinstance(raw, dict):
            return adapter.validate_python(raw)
        return adapter.validate_json(raw)
    except ValidationError as error:
        body = _best_effort_body(raw)
        raise ContractError(topic, _describe(error, _readable_str(body, "type")), body=body) from error


def encode(message: ContractModel) -> bytes:
    """The UTF-8 JSON body of `message`, with `type` and `schema_version` always present."""
    return message.model_dump_json().encode("utf-8")


def topic_of(message: ContractModel) -> str:
    """The topic `message` is published on."""
    return TOPIC_BY_TYPE[message.type]
