import pytest

from im_contracts import (
    CORRELATION_ID_HEADER,
    MODEL_BY_TYPE,
    KeyScope,
    MessageRejected,
    ReasonCode,
    RejectionStage,
    conversation_id,
    kafka_headers,
    kafka_key,
    key_scope,
)
from tests.contracts.examples import AT, CONVERSATION_ID, CREATOR_ID, EXAMPLES, SELLER_ID, with_changes

CONVERSATION_SCOPED = [
    "SendMessage", "SendAdmitted", "MessageDelivered", "MessageRejected",
    "BlockCreator", "UnblockCreator", "BlockSeller", "UnblockSeller",
    "CreatorBlocked", "CreatorUnblocked", "SellerBlocked", "SellerUnblocked",
    "StarConversation", "UnstarConversation", "ArchiveConversation", "UnarchiveConversation", "MarkConversationRead",
    "SendProductCard", "SendTargetCollaboration", "RespondToTargetCollaboration", "RequestSample",
    "CardDelivered", "CardRejected", "TargetCollaborationAccepted", "TargetCollaborationDeclined",
    "SampleRequested", "SampleRequestApproved", "SampleRequestRejected", "CreatorConnected",
]
SELLER_SCOPED = [
    "SendScreened", "BulkSendMessage", "BulkSendCompleted", "SetSellerAccess", "SellerAccessChanged",
    "SellerGmvUpdated", "OutreachCharged", "ReviewSampleRequest", "SampleReviewFailed",
]
CREATOR_SCOPED = ["CreatorProfileUpdated"]


def test_conversation_id_joins_seller_and_creator():
    assert conversation_id("s1", "c1") == "s1:c1"


def test_every_type_has_a_key_scope():
    scoped = CONVERSATION_SCOPED + SELLER_SCOPED + CREATOR_SCOPED + ["DeadLetter"]

    assert sorted(scoped) == sorted(MODEL_BY_TYPE)
    assert all(isinstance(key_scope(model), KeyScope) for model in MODEL_BY_TYPE.values())


@pytest.mark.parametrize("type_name", CONVERSATION_SCOPED)
def test_conversation_scoped_types_use_conversation_id(type_name):
    assert kafka_key(EXAMPLES[type_name]) == CONVERSATION_ID.encode()


@pytest.mark.parametrize("type_name", SELLER_SCOPED)
def test_seller_scoped_types_use_seller_id(type_name):
    assert kafka_key(EXAMPLES[type_name]) == SELLER_ID.encode()


@pytest.mark.parametrize("type_name", CREATOR_SCOPED)
def test_creator_scoped_types_use_creator_id(type_name):
    assert kafka_key(EXAMPLES[type_name]) == CREATOR_ID.encode()


def test_sample_review_failure_is_seller_scoped_even_when_creator_is_known():
    failure = with_changes(EXAMPLES["SampleReviewFailed"], creator_id=CREATOR_ID)

    assert kafka_key(failure) == SELLER_ID.encode()


def test_dead_letter_reuses_original_key_or_falls_back_to_service():
    dead_letter = EXAMPLES["DeadLetter"]

    assert kafka_key(dead_letter) == CONVERSATION_ID.encode()
    assert kafka_key(with_changes(dead_letter, key=None)) == b"quota"


def test_unreadable_invalid_command_rejection_is_keyed_by_command_id():
    rejection = MessageRejected(
        event_id="evt-9",
        occurred_at=AT,
        command_id="cmd-broken",
        creator_id=CREATOR_ID,
        stage=RejectionStage.MODERATION,
        reason=ReasonCode.INVALID_COMMAND,
        detail="seller_id: Field required",
    )

    assert kafka_key(rejection) == b"cmd-broken"


def test_bulk_fan_out_keeps_each_creators_conversation_key():
    keys = [kafka_key(send) for send in EXAMPLES["BulkSendMessage"].fan_out()]

    assert keys == [b"seller_1:creator-42", b"seller_1:creator-43"]


def test_correlation_id_travels_in_headers():
    assert kafka_headers("req-7") == [(CORRELATION_ID_HEADER, b"req-7")]
    assert CORRELATION_ID_HEADER == "correlation_id"
