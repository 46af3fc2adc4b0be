"""Moderation rules without I/O: screening a send (R11–R14 in R20's order),
the content policy, and how a moderation command changes a stored state."""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from im_contracts import (
    BLOCKED_BY_SELLER_CREATOR_DETAIL,
    BlockCreator,
    BlockSeller,
    CreatorBlocked,
    CreatorUnblocked,
    ReasonCode,
    SellerAccessChanged,
    SellerAccessStatus,
    SellerBlocked,
    SellerUnblocked,
    SendMessage,
    Sender,
    SetSellerAccess,
    UnblockCreator,
    UnblockSeller,
)
from im_contracts.base import MAX_ID_LENGTH, MAX_TEXT_LENGTH

# --- content policy (R14) ------------------------------------------------------

TEXT_LENGTH_RULE_ID = "text-length"
"""The built-in rule: 1–2,000 characters after trimming (fixed by DESIGN, not by the policy file)."""
DEFAULT_CONTENT_DETAIL = "Your message contains content that is not allowed."


class ContentPolicyError(ValueError):
    """A policy document that cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class ContentRule:
    rule_id: str
    matcher: re.Pattern[str]
    detail: str

    def matches(self, text: str) -> bool:
        return self.matcher.search(text) is not None


@dataclass(frozen=True, slots=True)
class ContentPolicy:
    """Banned-term rules first, then pattern rules, each in file order; the first match refuses."""

    rules: tuple[ContentRule, ...] = ()

    def first_violation(self, text: str) -> ContentRule | None:
        return next((rule for rule in self.rules if rule.matches(text)), None)

    @classmethod
    def from_mapping(cls, document: Any) -> "ContentPolicy":
        """Build from a parsed policy document:

        banned_terms: [{id, terms: [..], detail?}]   matched case-insensitively as whole words
        patterns:     [{id, pattern, detail?}]        regular expressions, case-insensitive
                                                      (use an inline (?-i:...) group to opt out)
        """
        if document is None:
            return cls()
        if not isinstance(document, Mapping):
            raise ContentPolicyError("the policy must be a mapping with banned_terms and/or patterns")
        unknown = set(document) - {"banned_terms", "patterns"}
        if unknown:
            raise ContentPolicyError(f"unknown top-level keys: {', '.join(sorted(map(str, unknown)))}")
        rules = [
            *(_term_rule(entry, f"banned_terms[{i}]") for i, entry in enumerate(_entries(document, "banned_terms"))),
            *(_pattern_rule(entry, f"patterns[{i}]") for i, entry in enumerate(_entries(document, "patterns"))),
        ]
        seen: set[str] = {TEXT_LENGTH_RULE_ID}
        for rule in rules:
            if rule.rule_id in seen:
                raise ContentPolicyError(f"rule id {rule.rule_id!r} is used twice (or is reserved)")
            seen.add(rule.rule_id)
        return cls(tuple(rules))


def word_matcher(term: str) -> str:
    """A regex for a term as whole words: 'cash app' matches 'Cash  App!' but
    'cash' does not match 'cashmere'. Inner whitespace matches any whitespace."""
    body = r"\s+".join(re.escape(word) for word in term.split())
    start = r"(?<!\w)" if re.match(r"\w", term.strip()) else ""
    end = r"(?!\w)" if re.search(r"\w$", term.strip()) else ""
    return f"{start}{body}{end}"


def _entries(document: Mapping[str, Any], key: str) -> list[Any]:
    entries = document.get(key) or []
    if not isinstance(entries, list):
        raise ContentPolicyError(f"{key} must be a list")
    return entries


def _rule_fields(entry: Any, where: str, body_key: str) -> tuple[str, Any, str]:
    if not isinstance(entry, Mapping):
        raise ContentPolicyError(f"{where}: must be a mapping with id and {body_key}")
    rule_id, detail = entry.get("id"), entry.get("detail", DEFAULT_CONTENT_DETAIL)
    if not isinstance(rule_id, str) or not 1 <= len(rule_id.strip()) <= MAX_ID_LENGTH or rule_id != rule_id.strip():
        raise ContentPolicyError(f"{where}: id must be 1-{MAX_ID_LENGTH} characters without surrounding spaces")
    if not isinstance(detail, str) or not detail.strip():
        raise ContentPolicyError(f"{where} ({rule_id}): detail must be non-empty text")
    if body_key not in entry:
        raise ContentPolicyError(f"{where} ({rule_id}): {body_key} is required")
    return rule_id, entry[body_key], detail.strip()


def _term_rule(entry: Any, where: str) -> ContentRule:
    rule_id, terms, detail = _rule_fields(entry, where, "terms")
    if not isinstance(terms, list) or not terms or not all(isinstance(t, str) and t.strip() for t in terms):
        raise ContentPolicyError(f"{where} ({rule_id}): terms must be a non-empty list of non-empty strings")
    matcher = re.compile("|".join(f"(?:{word_matcher(t)})" for t in terms), re.IGNORECASE)
    return ContentRule(rule_id, matcher, detail)


def _pattern_rule(entry: Any, where: str) -> ContentRule:
    rule_id, pattern, detail = _rule_fields(entry, where, "pattern")
    if not isinstance(pattern, str) or not pattern:
        raise ContentPolicyError(f"{where} ({rule_id}): pattern must be a non-empty string")
    try:
        matcher = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ContentPolicyError(f"{where} ({rule_id}): invalid regular expression: {exc}") from exc
    return ContentRule(rule_id, matcher, detail)


# --- screening a send (R11–R14, R20) --------------------------------------------

SELLER_BLOCKED_CREATOR_DETAIL = "You blocked this creator. Unblock them to send messages."
CREATOR_BLOCKED_SELLER_DETAIL = "This creator has blocked you, so you cannot send them messages."
SELLER_CANNOT_RECEIVE_DETAIL = "This seller cannot receive messages right now."


@dataclass(frozen=True, slots=True)
class ScreeningFacts:
    """What moderation knows about the two parties of a send when it is judged."""

    seller_access: SellerAccessStatus = SellerAccessStatus.ACTIVE
    seller_blocked_creator: bool = False
    creator_blocked_seller: bool = False


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: ReasonCode
    detail: str
    rule_id: str | None = None


Rule = Callable[[SendMessage, ScreeningFacts, ContentPolicy], Refusal | None]


def access_rule(send: SendMessage, facts: ScreeningFacts, _: ContentPolicy) -> Refusal | None:
    """R13: a revoked seller neither sends nor receives."""
    if facts.seller_access is SellerAccessStatus.ACTIVE:
        return None
    if send.sender is Sender.SELLER:
        status = str(facts.seller_access).replace("_", " ")
        return Refusal(ReasonCode.SELLER_ACCESS_REVOKED, f"You cannot send messages while your account is {status}.")
    return Refusal(ReasonCode.SELLER_ACCESS_REVOKED, SELLER_CANNOT_RECEIVE_DETAIL)


def blocked_by_seller_rule(send: SendMessage, facts: ScreeningFacts, _: ContentPolicy) -> Refusal | None:
    """R11: the seller's block stops both directions; each side is told its own story."""
    if not facts.seller_blocked_creator:
        return None
    detail = SELLER_BLOCKED_CREATOR_DETAIL if send.sender is Sender.SELLER else BLOCKED_BY_SELLER_CREATOR_DETAIL
    return Refusal(ReasonCode.BLOCKED_BY_SELLER, detail)


def blocked_by_creator_rule(send: SendMessage, facts: ScreeningFacts, _: ContentPolicy) -> Refusal | None:
    """R12: a creator's block stops the seller's sends (judged for seller sends only, R20)."""
    if not facts.creator_blocked_seller:
        return None
    return Refusal(ReasonCode.BLOCKED_BY_CREATOR, CREATOR_BLOCKED_SELLER_DETAIL)


def content_rule(send: SendMessage, _: ScreeningFacts, policy: ContentPolicy) -> Refusal | None:
    """R14: length after trimming, then the policy's terms and patterns."""
    text = send.text.strip()
    if not 1 <= len(text) <= MAX_TEXT_LENGTH:
        detail = f"Messages must be 1 to {MAX_TEXT_LENGTH:,} characters after trimming spaces; this one has {len(text):,}."
        return Refusal(ReasonCode.CONTENT_REJECTED, detail, TEXT_LENGTH_RULE_ID)
    violated = policy.first_violation(text)
    if violated is None:
        return None
    return Refusal(ReasonCode.CONTENT_REJECTED, violated.detail, violated.rule_id)


SELLER_SEND_RULES: tuple[Rule, ...] = (access_rule, blocked_by_seller_rule, blocked_by_creator_rule, content_rule)
CREATOR_SEND_RULES: tuple[Rule, ...] = (access_rule, blocked_by_seller_rule, content_rule)
"""R20. Card kinds follow their sender: product and target-collaboration cards and
sample reviews are seller sends, sample requests are creator sends."""


def screen(send: SendMessage, facts: ScreeningFacts, policy: ContentPolicy) -> Refusal | None:
    """The first failing rule in R20's order, or None when the send may go on to quota."""
    rules = SELLER_SEND_RULES if send.sender is Sender.SELLER else CREATOR_SEND_RULES
    for rule in rules:
        refusal = rule(send, facts, policy)
        if refusal is not None:
            return refusal
    return None


# --- moderation commands (R11–R13) ------------------------------------------------

ModerationCommandModel = BlockCreator | UnblockCreator | BlockSeller | UnblockSeller | SetSellerAccess
ModerationEventModel = CreatorBlocked | CreatorUnblocked | SellerBlocked | SellerUnblocked | SellerAccessChanged

BLOCKED = "blocked"
UNBLOCKED = "unblocked"


class SubjectKind(StrEnum):
    """One piece of state moderation owns."""

    SELLER_BLOCKS_CREATOR = "seller_blocks_creator"
    CREATOR_BLOCKS_SELLER = "creator_blocks_seller"
    SELLER_ACCESS = "seller_access"


@dataclass(frozen=True, slots=True)
class Subject:
    kind: SubjectKind
    seller_id: str
    creator_id: str | None = None

    @property
    def key(self) -> str:
        parts = (self.kind, self.seller_id) if self.creator_id is None else (self.kind, self.seller_id, self.creator_id)
        return ":".join(parts)

    @property
    def initial_state(self) -> str:
        """The state of a subject no command has touched: unblocked, access active."""
        return SellerAccessStatus.ACTIVE.value if self.kind is SubjectKind.SELLER_ACCESS else UNBLOCKED


def seller_blocks_creator(seller_id: str, creator_id: str) -> Subject:
    return Subject(SubjectKind.SELLER_BLOCKS_CREATOR, seller_id, creator_id)


def creator_blocks_seller(seller_id: str, creator_id: str) -> Subject:
    return Subject(SubjectKind.CREATOR_BLOCKS_SELLER, seller_id, creator_id)


def seller_access(seller_id: str) -> Subject:
    return Subject(SubjectKind.SELLER_ACCESS, seller_id)


@dataclass(frozen=True, slots=True)
class Intent:
    """The state a command asks for."""

    subject: Subject
    state: str


def intent_of(command: ModerationCommandModel) -> Intent:
    match command:
        case BlockCreator() | UnblockCreator():
            state = BLOCKED if isinstance(command, BlockCreator) else UNBLOCKED
            return Intent(seller_blocks_creator(command.seller_id, command.creator_id), state)
        case BlockSeller() | UnblockSeller():
            state = BLOCKED if isinstance(command, BlockSeller) else UNBLOCKED
            return Intent(creator_blocks_seller(command.seller_id, command.creator_id), state)
        case SetSellerAccess():
            return Intent(seller_access(command.seller_id), command.status.value)
    raise TypeError(f"not a moderation command: {type(command).__name__}")


@dataclass(frozen=True, slots=True)
class KnownState:
    state: str
    as_of: datetime
    """occurred_at of the newest command applied to the subject."""


def change_of(event: ModerationEventModel) -> tuple[Subject, KnownState]:
    """The subject an event changed, and what it changed it to."""
    match event:
        case CreatorBlocked() | CreatorUnblocked():
            subject = seller_blocks_creator(event.seller_id, event.creator_id)
            state = BLOCKED if isinstance(event, CreatorBlocked) else UNBLOCKED
        case SellerBlocked() | SellerUnblocked():
            subject = creator_blocks_seller(event.seller_id, event.creator_id)
            state = BLOCKED if isinstance(event, SellerBlocked) else UNBLOCKED
        case SellerAccessChanged():
            subject, state = seller_access(event.seller_id), event.status.value
        case _:
            raise TypeError(f"not a moderation event: {type(event).__name__}")
    return subject, KnownState(state, event.occurred_at)


def screening_subjects(pairs: list[tuple[str, str]]) -> list[Subject]:
    """The subjects each (seller, creator) pair is screened by, three per pair."""
    return [
        subject
        for seller_id, creator_id in pairs
        for subject in (seller_access(seller_id), seller_blocks_creator(seller_id, creator_id), creator_blocks_seller(seller_id, creator_id))
    ]


def screening_facts(states: list[str]) -> list[ScreeningFacts]:
    """The facts of each pair from the states of its `screening_subjects`, in their order."""
    each = iter(states)
    return [
        ScreeningFacts(
            seller_access=SellerAccessStatus(access),
            seller_blocked_creator=by_seller == BLOCKED,
            creator_blocked_seller=by_creator == BLOCKED,
        )
        for access, by_seller, by_creator in zip(each, each, each, strict=True)
    ]


class Verdict(StrEnum):
    CHANGED = "changed"
    """The state moves: store it and publish the event."""
    CONFIRMED = "confirmed"
    """Already in that state: remember the newer time, publish nothing."""
    STALE = "stale"
    """Older than what the subject already reflects: change nothing, publish nothing."""


def judge(subject: Subject, current: KnownState | None, wanted: str, occurred_at: datetime) -> Verdict:
    """Last writer wins by the command's occurred_at, so a late or duplicated
    command can never undo a newer one. Ties go to the command handled last."""
    if current is not None and occurred_at < current.as_of:
        return Verdict.STALE
    state = current.state if current is not None else subject.initial_state
    return Verdict.CONFIRMED if state == wanted else Verdict.CHANGED


def event_for(command: ModerationCommandModel, event_id: str) -> ModerationEventModel:
    """The event of a real change. Its occurred_at is the command's, which moderation
    keeps non-decreasing per subject, so every follower can order events by it
    without trusting any machine's clock."""
    common = {
        "event_id": event_id,
        "occurred_at": command.occurred_at,
        "command_id": command.command_id,
        "seller_id": command.seller_id,
    }
    match command:
        case BlockCreator():
            return CreatorBlocked(**common, creator_id=command.creator_id)
        case UnblockCreator():
            return CreatorUnblocked(**common, creator_id=command.creator_id)
        case BlockSeller():
            return SellerBlocked(**common, creator_id=command.creator_id)
        case UnblockSeller():
            return SellerUnblocked(**common, creator_id=command.creator_id)
        case SetSellerAccess():
            return SellerAccessChanged(**common, status=command.status, reason=command.reason)
    raise TypeError(f"not a moderation command: {type(command).__name__}")
