"""Closed value sets of the wire contract (DESIGN §2–4). Values are fixed: never rename."""

from enum import StrEnum


class Sender(StrEnum):
    SELLER = "seller"
    CREATOR = "creator"


class EntryPoint(StrEnum):
    """Where a send came from (R2)."""

    CREATOR_MESSAGES = "creator_messages"
    FIND_CREATORS = "find_creators"
    CREATOR_PROFILE = "creator_profile"
    TARGET_COLLABORATION = "target_collaboration"
    SAMPLE_REQUEST = "sample_request"
    BULK = "bulk"
    API = "api"


class MessageKind(StrEnum):
    """Every kind but `text` is a card and is published by collaboration-card only."""

    TEXT = "text"
    PRODUCT_CARD = "product_card"
    TARGET_COLLABORATION = "target_collaboration"
    SAMPLE_REQUEST = "sample_request"
    SAMPLE_REVIEW = "sample_review"


class RejectionStage(StrEnum):
    MODERATION = "moderation"
    QUOTA = "quota"
    MESSAGING = "messaging"


class ReasonCode(StrEnum):
    """Why a send was refused; listed in the order rules are judged (R20)."""

    SELLER_ACCESS_REVOKED = "SELLER_ACCESS_REVOKED"
    BLOCKED_BY_SELLER = "BLOCKED_BY_SELLER"
    BLOCKED_BY_CREATOR = "BLOCKED_BY_CREATOR"
    CONTENT_REJECTED = "CONTENT_REJECTED"
    REPLY_REQUIRED = "REPLY_REQUIRED"
    CREATOR_NOT_ELIGIBLE = "CREATOR_NOT_ELIGIBLE"
    QUOTA_EXHAUSTED = "QUOTA_EXHAUSTED"
    INVALID_COMMAND = "INVALID_COMMAND"


class SellerAccessStatus(StrEnum):
    ACTIVE = "active"
    SHOP_CLOSED = "shop_closed"
    DEACTIVATED = "deactivated"


class InboxFolder(StrEnum):
    MESSAGES = "messages"
    UNREAD = "unread"
    UNREPLIED = "unreplied"
    STARRED = "starred"
    ARCHIVED = "archived"


class ChargeSource(StrEnum):
    STARTER_PACK = "starter_pack"
    WEEKLY = "weekly"


class ConnectionVia(StrEnum):
    SHOWCASE = "showcase"
    VIDEO = "video"
    COLLABORATION = "collaboration"


class TargetCollaborationResponse(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"


class SampleDecision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class SampleReviewFailure(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    NOT_OWNER = "NOT_OWNER"
    ALREADY_REVIEWED = "ALREADY_REVIEWED"


class SampleRequestStatus(StrEnum):
    """A sample request is reviewed once: pending → approved | rejected (R18)."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
