import pytest

from im_contracts import ContractError, MessageRejected, ReasonCode, RejectionStage, parse, topics
from tests.contracts.examples import AT, SEND, wire_body

BAD_BODIES = [
    # (case, topic, body, words the error must contain)
    ("bad id chars", topics.SEND_REQUESTED, wire_body("SendMessage", seller_id="seller 1"), "seller_id: String should match pattern"),
    ("65-char id", topics.SEND_REQUESTED, wire_body("SendMessage", creator_id="c" * 65), "creator_id: String should have at most 64 characters"),
    ("empty id", topics.SEND_REQUESTED, wire_body("SendMessage", seller_id=""), "seller_id: String should have at least 1 character"),
    ("empty text", topics.SEND_REQUESTED, wire_body("SendMessage", text=""), "text: text must be 1 to 2,000 characters after trimming whitespace, got 0"),
    ("whitespace text", topics.SEND_REQUESTED, wire_body("SendMessage", text=" \n\t "), "text: text must be 1 to 2,000 characters"),
    ("2,001-char text", topics.SEND_REQUESTED, wire_body("SendMessage", text="x" * 2001), "got 2001"),
    ("bulk text too long", topics.BULK_REQUESTED, wire_body("BulkSendMessage", text="x" * 2001), "text: text must be 1 to 2,000"),
    ("unknown type", topics.SEND_REQUESTED, wire_body("SendMessage", type="SendEmail"), "Input tag 'SendEmail' found using 'type' does not match any of the expected tags: 'SendMessage'"),
    ("type of another topic", topics.MODERATION_COMMANDS, wire_body("StarConversation"), "Input tag 'StarConversation'"),
    ("missing type", topics.INBOX_COMMANDS, {k: v for k, v in wire_body("StarConversation").items() if k != "type"}, "Unable to extract tag using discriminator 'type'"),
    ("unknown sender", topics.SEND_REQUESTED, wire_body("SendMessage", sender="bot"), "sender: Input should be 'seller' or 'creator'"),
    ("unknown entry point", topics.SEND_REQUESTED, wire_body("SendMessage", entry_point="email"), "entry_point: Input should be"),
    ("unknown access status", topics.MODERATION_COMMANDS, wire_body("SetSellerAccess", status="paused"), "status: Input should be 'active', 'shop_closed' or 'deactivated'"),
    ("unknown reason code", topics.SEND_REJECTED, wire_body("MessageRejected", reason="TOO_RUDE"), "reason: Input should be"),
    ("naive datetime", topics.SEND_REQUESTED, wire_body("SendMessage", occurred_at="2026-01-06T17:30:00"), "occurred_at: expected an RFC 3339 timestamp with a timezone"),
    ("bare date", topics.SEND_REQUESTED, wire_body("SendMessage", occurred_at="2026-01-06"), "occurred_at: expected an RFC 3339 timestamp"),
    ("unix seconds", topics.SEND_REQUESTED, wire_body("SendMessage", occurred_at=1767720600), "occurred_at: expected an RFC 3339 timestamp"),
    ("bulk duplicates", topics.BULK_REQUESTED, wire_body("BulkSendMessage", creator_ids=["a", "b", "a"]), "creator_ids must be distinct; repeated: a"),
    ("bulk 501 ids", topics.BULK_REQUESTED, wire_body("BulkSendMessage", creator_ids=[f"c{i}" for i in range(501)]), "creator_ids: Tuple should have at most 500 items"),
    ("bulk 0 ids", topics.BULK_REQUESTED, wire_body("BulkSendMessage", creator_ids=[]), "creator_ids: Tuple should have at least 1 item"),
    ("bulk id too long to fan out", topics.BULK_REQUESTED, wire_body("BulkSendMessage", command_id="b" * 100, creator_ids=["c" * 40]), "command_id too long for bulk fan-out"),
    ("quantity 6", topics.COLLABORATION_COMMANDS, wire_body("RequestSample", quantity=6), "quantity: Input should be less than or equal to 5"),
    ("quantity 0", topics.COLLABORATION_COMMANDS, wire_body("RequestSample", quantity=0), "quantity: Input should be greater than or equal to 1"),
    ("note too long", topics.COLLABORATION_COMMANDS, wire_body("RequestSample", note="n" * 501), "note: String should have at most 500 characters"),
    ("commission 1.5", topics.COLLABORATION_COMMANDS, wire_body("SendProductCard", product=wire_body("SendProductCard")["product"] | {"commission_rate": "1.5"}), "product.commission_rate: Input should be less than or equal to 1"),
    ("negative price", topics.COLLABORATION_COMMANDS, wire_body("SendProductCard", product=wire_body("SendProductCard")["product"] | {"price": -1}), "product.price: Input should be greater than or equal to 0"),
    ("lowercase currency", topics.COLLABORATION_COMMANDS, wire_body("SendProductCard", product=wire_body("SendProductCard")["product"] | {"currency": "usd"}), "product.currency: String should match pattern"),
    ("plan without products", topics.COLLABORATION_COMMANDS, wire_body("SendTargetCollaboration", plan=wire_body("SendTargetCollaboration")["plan"] | {"product_ids": []}), "plan.product_ids: Tuple should have at least 1 item"),
    ("negative gmv", topics.DIRECTORY_EVENTS, wire_body("SellerGmvUpdated", gmv_30d="-0.01"), "gmv_30d: Input should be greater than or equal to 0"),
    ("NaN money", topics.DIRECTORY_EVENTS, wire_body("SellerGmvUpdated", gmv_30d="NaN"), "gmv_30d"),
    ("missing command_id", topics.SEND_REQUESTED, wire_body("SendMessage", command_id=None), "command_id: Field required"),
    ("command_id 129 chars", topics.SEND_REQUESTED, wire_body("SendMessage", command_id="c" * 129), "command_id: String should have at most 128 characters"),
    ("event without its command", topics.MODERATION_EVENTS, wire_body("CreatorBlocked", command_id=None), "command_id: Field required"),
    ("card without card_id", topics.SEND_REQUESTED, wire_body("SendMessage", kind="product_card"), "card_id is required when kind is product_card"),
    ("text with card_id", topics.SEND_REQUESTED, wire_body("SendMessage", card_id="card-1"), "card_id must be absent when kind is text"),
    ("wrong conversation_id", topics.SEND_DELIVERED, wire_body("MessageDelivered", conversation_id="x:y"), "conversation_id must be 'seller_1:creator-42'"),
    ("seq 0", topics.SEND_DELIVERED, wire_body("MessageDelivered", seq=0), "seq: Input should be greater than 0"),
    ("rejection without parties", topics.SEND_REJECTED, wire_body("MessageRejected", seller_id=None), "seller_id: required unless reason is INVALID_COMMAND"),
    ("bulk counts off", topics.BULK_COMPLETED, wire_body("BulkSendCompleted", delivered=2), "delivered + rejected must equal total"),
    ("text card delivered", topics.COLLABORATION_EVENTS, wire_body("CardDelivered", kind="text"), "kind must be a card kind, not text"),
    ("screened send mismatch", topics.SEND_SCREENED, wire_body("SendScreened", command_id="other"), "command_id must equal send.command_id"),
    ("negative followers", topics.DIRECTORY_EVENTS, wire_body("CreatorProfileUpdated", followers=-1), "followers: Input should be greater than or equal to 0"),
    ("bad dlq encoding", topics.DLQ, wire_body("DeadLetter", payload_encoding="hex"), "payload_encoding: Input should be 'utf-8' or 'base64'"),
]


@pytest.mark.parametrize(("topic", "body", "expected"), [case[1:] for case in BAD_BODIES], ids=[case[0] for case in BAD_BODIES])
def test_bad_bodies_are_refused_readably(topic, body, expected):
    with pytest.raises(ContractError) as refusal:
        parse(topic, body)

    assert expected in str(refusal.value)
    assert str(refusal.value).startswith(f"{topic}: invalid ")


def test_error_names_the_type_and_the_readable_command_id():
    with pytest.raises(ContractError) as refusal:
        parse(topics.SEND_REQUESTED, wire_body("SendMessage", text=""))

    assert refusal.value.type_name == "SendMessage"
    assert refusal.value.command_id == "cmd-1"
    assert str(refusal.value).startswith("im.send.requested: invalid SendMessage: text:")


@pytest.mark.parametrize("raw", [b"{oops", b"\xff\xfe", b"[1, 2]", "", b"null"])
def test_unreadable_bodies_are_contract_errors(raw):
    with pytest.raises(ContractError) as refusal:
        parse(topics.SEND_REQUESTED, raw)

    assert refusal.value.command_id is None


def test_unknown_topic_is_a_configuration_error_not_bad_input():
    with pytest.raises(ValueError, match="unknown topic 'im.nope'") as refusal:
        parse("im.nope", b"{}")

    assert not isinstance(refusal.value, ContractError)


def test_text_is_stored_trimmed():
    body = wire_body("SendMessage", text="  hello \n")

    assert parse(topics.SEND_REQUESTED, body).text == "hello"


def test_invalid_command_rejection_may_lack_parties():
    rejection = MessageRejected(
        event_id="evt-9",
        occurred_at=AT,
        command_id="cmd-broken",
        stage=RejectionStage.MODERATION,
        reason=ReasonCode.INVALID_COMMAND,
        detail="text: text must be 1 to 2,000 characters after trimming whitespace, got 0",
    )

    assert rejection.seller_id is None


def test_models_are_immutable():
    with pytest.raises(Exception, match="frozen"):
        SEND.text = "changed"  # type: ignore[misc]


def test_error_offers_no_command_id_that_could_not_answer_it():
    with pytest.raises(ContractError) as refusal:
        parse(topics.SEND_REQUESTED, wire_body("SendMessage", command_id="c" * 129))

    assert refusal.value.command_id is None
