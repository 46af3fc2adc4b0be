"""One valid example of every contract type, for any test in the suite to reuse.

`EXAMPLES[type_name]` is a model instance; `with_changes(model, **fields)` derives a
variant through full validation; `wire_body(type_name, **fields)` gives a JSON-ready dict.
"""

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from im_contracts import (
    ArchiveConversation,
    BlockCreator,
    BlockSeller,
    BulkSendCompleted,
    BulkSendMessage,
    CardDelivered,
    CardRejected,
    ChargeSource,
    CollaborationPlan,
    ConnectionVia,
    ContractModel,
    CreatorBlocked,
    CreatorConnected,
    CreatorProfileUpdated,
    CreatorUnblocked,
    DeadLetter,
    EntryPoint,
    MarkConversationRead,
    MessageDelivered,
    MessageKind,
    MessageRejected,
    OutreachCharged,
    ProductSnapshot,
    ReasonCode,
    RejectionStage,
    RequestSample,
    RespondToTargetCollaboration,
    ReviewSampleRequest,
    SampleDecision,
    SampleRequestApproved,
    SampleRequested,
    SampleRequestRejected,
    SampleReviewFailed,
    SampleReviewFailure,
    SellerAccessChanged,
    SellerAccessStatus,
    SellerBlocked,
    SellerGmvUpdated,
    SellerUnblocked,
    SendAdmitted,
    SendMessage,
    SendProductCard,
    SendScreened,
    SendTargetCollaboration,
    Sender,
    SetSellerAccess,
    StarConversation,
    TargetCollaborationAccepted,
    TargetCollaborationDeclined,
    TargetCollaborationResponse,
    UnarchiveConversation,
    UnblockCreator,
    UnblockSeller,
    UnstarConversation,
)

SELLER_ID = "seller_1"
CREATOR_ID = "creator-42"
CONVERSATION_ID = f"{SELLER_ID}:{CREATOR_ID}"
AT = datetime(2026, 1, 6, 17, 30, tzinfo=timezone.utc)
WEEK_START = datetime(2026, 1, 4, 8, 0, tzinfo=timezone.utc)  # Sunday 00:00 America/Los_Angeles
CARD_ID = "card-1"
SAMPLE_REQUEST_ID = "card-2"

_command = {"command_id": "cmd-1", "occurred_at": AT}
_outcome = {"event_id": "evt-1", "occurred_at": AT, "command_id": "cmd-1"}
_fact = {"event_id": "evt-1", "occurred_at": AT}
_pair = {"seller_id": SELLER_ID, "creator_id": CREATOR_ID}

SEND = SendMessage(**_command, **_pair, sender=Sender.SELLER, text="Hi! Interested in our new blender?")
PRODUCT = ProductSnapshot(
    product_id="prod-9",
    title="Blender 3000",
    price=Decimal("49.90"),
    currency="USD",
    commission_rate=Decimal("0.15"),
    image_url="https://cdn.example.com/p/9.jpg",
)
PLAN = CollaborationPlan(
    plan_id="plan-3",
    name="Spring launch",
    commission_rate=Decimal("0.2"),
    product_ids=("prod-9", "prod-10"),
    valid_until=datetime(2026, 3, 1, tzinfo=timezone.utc),
)

_ALL: list[ContractModel] = [
    SEND,
    SendScreened(**_outcome, send=SEND, screened_at=AT),
    SendAdmitted(**_outcome, send=SEND, quota_charged=True, connected=False),
    MessageDelivered(
        **_outcome,
        **_pair,
        message_id="msg-1",
        conversation_id=CONVERSATION_ID,
        seq=1,
        sender=Sender.SELLER,
        kind=MessageKind.TEXT,
        text=SEND.text,
        entry_point=EntryPoint.API,
        sent_at=AT,
        quota_charged=True,
    ),
    MessageRejected(
        **_outcome,
        **_pair,
        sender=Sender.SELLER,
        stage=RejectionStage.QUOTA,
        reason=ReasonCode.QUOTA_EXHAUSTED,
        detail="Weekly outreach limit reached.",
    ),
    BulkSendMessage(**_command, seller_id=SELLER_ID, creator_ids=(CREATOR_ID, "creator-43"), text="Hello all!"),
    BulkSendCompleted(
        **_outcome,
        seller_id=SELLER_ID,
        total=2,
        delivered=1,
        rejected=1,
        rejected_by_reason={ReasonCode.BLOCKED_BY_CREATOR: 1},
    ),
    BlockCreator(**_command, **_pair),
    UnblockCreator(**_command, **_pair),
    BlockSeller(**_command, **_pair),
    UnblockSeller(**_command, **_pair),
    SetSellerAccess(**_command, seller_id=SELLER_ID, status=SellerAccessStatus.SHOP_CLOSED, reason="Shop closed"),
    CreatorBlocked(**_outcome, **_pair),
    CreatorUnblocked(**_outcome, **_pair),
    SellerBlocked(**_outcome, **_pair),
    SellerUnblocked(**_outcome, **_pair),
    SellerAccessChanged(**_outcome, seller_id=SELLER_ID, status=SellerAccessStatus.SHOP_CLOSED),
    StarConversation(**_command, **_pair),
    UnstarConversation(**_command, **_pair),
    ArchiveConversation(**_command, **_pair),
    UnarchiveConversation(**_command, **_pair),
    MarkConversationRead(**_command, **_pair, up_to_seq=7),
    SendProductCard(**_command, **_pair, product=PRODUCT),
    SendTargetCollaboration(**_command, **_pair, plan=PLAN),
    RespondToTargetCollaboration(**_command, **_pair, card_id=CARD_ID, response=TargetCollaborationResponse.ACCEPT),
    RequestSample(**_command, **_pair, product_id="prod-9", product_title="Blender 3000", quantity=2, note="For a video"),
    ReviewSampleRequest(
        **_command, seller_id=SELLER_ID, sample_request_id=SAMPLE_REQUEST_ID, decision=SampleDecision.APPROVE
    ),
    CardDelivered(**_outcome, **_pair, card_id=CARD_ID, kind=MessageKind.PRODUCT_CARD, message_id="msg-2"),
    CardRejected(
        **_outcome,
        **_pair,
        card_id=CARD_ID,
        kind=MessageKind.TARGET_COLLABORATION,
        reason=ReasonCode.CREATOR_NOT_ELIGIBLE,
        detail="This creator is above your follower cap.",
    ),
    TargetCollaborationAccepted(**_outcome, **_pair, card_id=CARD_ID),
    TargetCollaborationDeclined(**_outcome, **_pair, card_id=CARD_ID),
    SampleRequested(**_outcome, **_pair, sample_request_id=SAMPLE_REQUEST_ID, product_id="prod-9", quantity=2),
    SampleRequestApproved(**_outcome, **_pair, sample_request_id=SAMPLE_REQUEST_ID),
    SampleRequestRejected(**_outcome, **_pair, sample_request_id=SAMPLE_REQUEST_ID, reason="Out of stock"),
    SampleReviewFailed(
        **_outcome, seller_id=SELLER_ID, sample_request_id="card-404", reason=SampleReviewFailure.NOT_FOUND
    ),
    SellerGmvUpdated(**_fact, seller_id=SELLER_ID, gmv_30d=Decimal("1234.50")),
    CreatorProfileUpdated(
        **_fact,
        creator_id=CREATOR_ID,
        nickname="Kitchen Kat",
        followers=18_500,
        main_category="Home & Kitchen",
        sales_gmv_30d=Decimal("9800"),
        revenue_30d=Decimal("1200.75"),
        video_views=250_000,
        live_unique_viewers=3_100,
        avatar_url="https://cdn.example.com/a/42.jpg",
    ),
    CreatorConnected(**_fact, **_pair, via=ConnectionVia.SHOWCASE),
    OutreachCharged(
        **_outcome, **_pair, week_start=WEEK_START, source=ChargeSource.WEEKLY, used=12, limit=50
    ),
    DeadLetter(
        **_fact,
        service="quota",
        topic="im.send.screened",
        partition=3,
        offset=1_042,
        key=CONVERSATION_ID,
        error="not valid JSON",
        payload="{oops",
    ),
]

EXAMPLES: dict[str, ContractModel] = {example.type: example for example in _ALL}
"""Type name → one valid instance of that type."""


def with_changes(model: ContractModel, **fields: Any) -> ContractModel:
    """A copy of `model` with `fields` replaced, validated like a fresh message."""
    return type(model).model_validate({**model.model_dump(), **fields})


def wire_body(type_name: str, **fields: Any) -> dict[str, Any]:
    """The JSON-ready body of `EXAMPLES[type_name]`, with `fields` set (use None to drop a key)."""
    body = {**EXAMPLES[type_name].model_dump(mode="json"), **fields}
    return {key: value for key, value in body.items() if value is not None}
