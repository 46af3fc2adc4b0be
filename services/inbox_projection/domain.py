"""Inbox rows without I/O (R11, R12 icons, R15 folders, R16 filter fields, R17 read marks).

A row is a function of the facts it has seen, not of the order they came in:
events of one conversation arrive in order on one partition of each topic, but
the four topics interleave differently live and in a rebuild. So:

- messages: the highest seq is the last message (a lower or equal seq is a
  replay and changes nothing); activity times only grow;
- star, archive and both block flags: the latest (occurred_at, id) wins;
- read marks only advance: the highest `up_to_seq`, and for a mark without one
  the latest mark time (it reads every creator message delivered by then);
- archived holds only while the archive is at least as new as the latest
  creator message (a new creator message un-archives);
- the creator profile: the latest (occurred_at, event_id) wins.

Times keep their full microsecond precision: they are stored as integer
microseconds since the epoch, not as database dates (milliseconds), so two
commands a few microseconds apart keep their order after a round trip.
"""

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter

from im_contracts import CreatorProfileUpdated, InboxFolder, MessageDelivered, MessageKind, Money, Sender, conversation_id

_MONEY = TypeAdapter(Money)
_TIMESTAMP = TypeAdapter(datetime)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def micros(value: datetime) -> int:
    """A time as stored: exact, and ordered like the time itself."""
    return (value - EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    return EPOCH + value * _MICROSECOND


def _micros_or_none(value: datetime | None) -> int | None:
    return None if value is None else micros(value)


def _time_or_none(value: int | None) -> datetime | None:
    return None if value is None else from_micros(value)


def later(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate > current else current


def money_json(value: Decimal | None) -> str | None:
    return None if value is None else _MONEY.dump_python(value, mode="json")


def timestamp_json(value: datetime) -> str:
    return _TIMESTAMP.dump_python(value, mode="json")


@dataclass(frozen=True, order=True)
class Stamp:
    """Orders last-writer-wins changes the same way in every replay."""

    at: datetime
    by: str

    @classmethod
    def of(cls, occurred_at: datetime, by: str) -> "Stamp":
        return cls(utc(occurred_at), by)


@dataclass(frozen=True)
class Flag:
    on: bool
    stamp: Stamp


def latest(current: Flag | None, candidate: Flag) -> Flag:
    return candidate if current is None or candidate.stamp > current.stamp else current


@dataclass(frozen=True)
class LastMessage:
    message_id: str
    seq: int
    sender: Sender
    kind: MessageKind
    text: str
    sent_at: datetime


@dataclass(frozen=True)
class UnreadMessage:
    seq: int
    at: datetime


@dataclass(frozen=True)
class CreatorProfile:
    nickname: str
    followers: int
    main_category: str
    sales_gmv_30d: Decimal
    revenue_30d: Decimal | None
    video_views: int | None
    live_unique_viewers: int | None
    avatar_url: str | None
    stamp: Stamp

    @classmethod
    def from_event(cls, event: CreatorProfileUpdated) -> "CreatorProfile":
        return cls(
            nickname=event.nickname,
            followers=event.followers,
            main_category=event.main_category,
            sales_gmv_30d=event.sales_gmv_30d,
            revenue_30d=event.revenue_30d,
            video_views=event.video_views,
            live_unique_viewers=event.live_unique_viewers,
            avatar_url=event.avatar_url,
            stamp=Stamp.of(event.occurred_at, event.event_id),
        )

    def newer_than(self, other: "CreatorProfile | None") -> bool:
        return other is None or self.stamp > other.stamp


@dataclass(frozen=True)
class Conversation:
    seller_id: str
    creator_id: str
    last_message: LastMessage | None = None
    last_activity: datetime | None = None
    last_creator_message_at: datetime | None = None
    unread: tuple[UnreadMessage, ...] = ()
    read_up_to_seq: int = 0
    read_at: datetime | None = None
    star: Flag | None = None
    archive: Flag | None = None
    block: Flag | None = None
    """The seller blocked the creator (R11)."""
    blocked_by: Flag | None = None
    """The creator blocked the seller (R12)."""
    profile: CreatorProfile | None = None

    # --- what the inbox shows -------------------------------------------------

    @property
    def conversation_id(self) -> str:
        return conversation_id(self.seller_id, self.creator_id)

    @property
    def has_messages(self) -> bool:
        """Commands and flags may precede the first message; only then is the row listed."""
        return self.last_message is not None

    @property
    def starred(self) -> bool:
        return self.star is not None and self.star.on

    @property
    def archived(self) -> bool:
        if self.archive is None or not self.archive.on:
            return False
        return self.last_creator_message_at is None or self.archive.stamp.at >= self.last_creator_message_at

    @property
    def blocked(self) -> bool:
        return self.block is not None and self.block.on

    @property
    def blocked_by_creator(self) -> bool:
        return self.blocked_by is not None and self.blocked_by.on

    @property
    def unread_count(self) -> int:
        return len(self.unread)

    @property
    def unreplied(self) -> bool:
        return self.last_message is not None and self.last_message.sender is Sender.CREATOR

    @property
    def folders(self) -> tuple[InboxFolder, ...]:
        """R15, exactly: starred ignores archiving; every other folder but archived excludes it."""
        if not self.has_messages:
            return ()
        folders: list[InboxFolder] = []
        if not self.archived:
            folders.append(InboxFolder.MESSAGES)
            if self.unread_count > 0:
                folders.append(InboxFolder.UNREAD)
            if self.unreplied:
                folders.append(InboxFolder.UNREPLIED)
        if self.starred:
            folders.append(InboxFolder.STARRED)
        if self.archived:
            folders.append(InboxFolder.ARCHIVED)
        return tuple(folders)

    # --- changes -----------------------------------------------------------

    def deliver(self, message: MessageDelivered) -> "Conversation":
        if self.last_message is not None and message.seq <= self.last_message.seq:
            return self  # a replay: seq of one conversation arrives in order on one partition
        at = utc(message.occurred_at)
        changed = replace(
            self,
            last_message=LastMessage(
                message_id=message.message_id,
                seq=message.seq,
                sender=Sender(message.sender),
                kind=MessageKind(message.kind),
                text=message.text,
                sent_at=utc(message.sent_at),
            ),
            last_activity=later(self.last_activity, at),
        )
        if message.sender is not Sender.CREATOR:
            return changed
        unread = UnreadMessage(message.seq, at)
        return replace(
            changed,
            last_creator_message_at=later(self.last_creator_message_at, at),
            unread=self.unread if self._is_read(unread) else (*self.unread, unread),
        )

    def mark_read(self, up_to_seq: int | None, occurred_at: datetime) -> "Conversation":
        """Up to `up_to_seq`, or without it every creator message delivered by the mark's time."""
        if up_to_seq is None:
            marked = replace(self, read_at=later(self.read_at, utc(occurred_at)))
        else:
            marked = replace(self, read_up_to_seq=max(self.read_up_to_seq, up_to_seq))
        return replace(marked, unread=tuple(m for m in marked.unread if not marked._is_read(m)))

    def _is_read(self, message: UnreadMessage) -> bool:
        return message.seq <= self.read_up_to_seq or (self.read_at is not None and message.at <= self.read_at)

    def set_star(self, flag: Flag) -> "Conversation":
        return replace(self, star=latest(self.star, flag))

    def set_archive(self, flag: Flag) -> "Conversation":
        return replace(self, archive=latest(self.archive, flag))

    def set_block(self, flag: Flag) -> "Conversation":
        return replace(self, block=latest(self.block, flag))

    def set_blocked_by_creator(self, flag: Flag) -> "Conversation":
        return replace(self, blocked_by=latest(self.blocked_by, flag))

    def with_profile(self, profile: CreatorProfile | None) -> "Conversation":
        return replace(self, profile=profile) if profile is not None and profile.newer_than(self.profile) else self


# --- stored form --------------------------------------------------------------


def _stamp_doc(stamp: Stamp) -> dict[str, Any]:
    return {"at": micros(stamp.at), "by": stamp.by}


def _flag_doc(flag: Flag | None) -> dict[str, Any] | None:
    return None if flag is None else {"on": flag.on, **_stamp_doc(flag.stamp)}


def _flag(doc: dict[str, Any] | None) -> Flag | None:
    return None if doc is None else Flag(doc["on"], Stamp(from_micros(doc["at"]), doc["by"]))


def profile_document(profile: CreatorProfile) -> dict[str, Any]:
    return {
        "nickname": profile.nickname,
        "followers": profile.followers,
        "main_category": profile.main_category,
        "sales_gmv_30d": money_json(profile.sales_gmv_30d),
        "revenue_30d": money_json(profile.revenue_30d),
        "video_views": profile.video_views,
        "live_unique_viewers": profile.live_unique_viewers,
        "avatar_url": profile.avatar_url,
        **_stamp_doc(profile.stamp),
    }


def profile_from_document(doc: dict[str, Any] | None) -> CreatorProfile | None:
    if doc is None:
        return None
    return CreatorProfile(
        nickname=doc["nickname"],
        followers=doc["followers"],
        main_category=doc["main_category"],
        sales_gmv_30d=Decimal(doc["sales_gmv_30d"]),
        revenue_30d=None if doc["revenue_30d"] is None else Decimal(doc["revenue_30d"]),
        video_views=doc["video_views"],
        live_unique_viewers=doc["live_unique_viewers"],
        avatar_url=doc["avatar_url"],
        stamp=Stamp(from_micros(doc["at"]), doc["by"]),
    )


def to_document(row: Conversation) -> dict[str, Any]:
    """The stored row: its facts, plus the derived fields that queries filter,
    sort and count on (folders, flags, and the profile's filterable fields)."""
    last = row.last_message
    profile = row.profile
    return {
        "_id": row.conversation_id,
        "seller_id": row.seller_id,
        "creator_id": row.creator_id,
        "last_message": None
        if last is None
        else {
            "message_id": last.message_id,
            "seq": last.seq,
            "sender": last.sender.value,
            "kind": last.kind.value,
            "text": last.text,
            "sent_at": micros(last.sent_at),
        },
        "last_activity": _micros_or_none(row.last_activity),
        "last_creator_message_at": _micros_or_none(row.last_creator_message_at),
        "unread": [{"seq": m.seq, "at": micros(m.at)} for m in row.unread],
        "read_up_to_seq": row.read_up_to_seq,
        "read_at": _micros_or_none(row.read_at),
        "star": _flag_doc(row.star),
        "archive": _flag_doc(row.archive),
        "block": _flag_doc(row.block),
        "blocked_by": _flag_doc(row.blocked_by),
        # derived
        "folders": [f.value for f in row.folders],
        "unread_count": row.unread_count,
        "unreplied": row.unreplied,
        "starred": row.starred,
        "archived": row.archived,
        "blocked": row.blocked,
        "blocked_by_creator": row.blocked_by_creator,
        **profile_fields(profile),
    }


def profile_fields(profile: CreatorProfile | None) -> dict[str, Any]:
    """A row's copy of its creator's profile, with the fields filters compare."""
    return {
        "profile": None if profile is None else profile_document(profile),
        "followers": None if profile is None else profile.followers,
        "main_category": None if profile is None else profile.main_category,
        # a float, so ranges compare numerically on every engine (no decimal128)
        "sales_gmv_30d": None if profile is None else float(profile.sales_gmv_30d),
    }


def from_document(doc: dict[str, Any]) -> Conversation:
    last = doc["last_message"]
    return Conversation(
        seller_id=doc["seller_id"],
        creator_id=doc["creator_id"],
        last_message=None
        if last is None
        else LastMessage(
            message_id=last["message_id"],
            seq=last["seq"],
            sender=Sender(last["sender"]),
            kind=MessageKind(last["kind"]),
            text=last["text"],
            sent_at=from_micros(last["sent_at"]),
        ),
        last_activity=_time_or_none(doc["last_activity"]),
        last_creator_message_at=_time_or_none(doc["last_creator_message_at"]),
        unread=tuple(UnreadMessage(m["seq"], from_micros(m["at"])) for m in doc["unread"]),
        read_up_to_seq=doc["read_up_to_seq"],
        read_at=_time_or_none(doc["read_at"]),
        star=_flag(doc["star"]),
        archive=_flag(doc["archive"]),
        block=_flag(doc["block"]),
        blocked_by=_flag(doc["blocked_by"]),
        profile=profile_from_document(doc["profile"]),
    )


# --- what the API shows -------------------------------------------------------


_CREATOR_FIELDS = ("nickname", "followers", "main_category", "sales_gmv_30d", "revenue_30d", "video_views", "live_unique_viewers", "avatar_url")
_FLAGS = ("unread_count", "unreplied", "starred", "archived", "blocked", "blocked_by_creator")

# What inbox_item reads of a stored row (a page reads only these).
ITEM_FIELDS = ("creator_id", "profile", "last_message", *_FLAGS)


def creator_view(profile: dict[str, Any] | None) -> dict[str, Any]:
    """DESIGN §5's `creator` object from a stored profile (`profile_document`:
    money already in its JSON form); every field null while the profile is unknown."""
    if profile is None:
        return dict.fromkeys(_CREATOR_FIELDS)
    return {name: profile[name] for name in _CREATOR_FIELDS}


def profile_panel(profile: dict[str, Any] | None) -> dict[str, Any]:
    """The conversation's side panel: followers, revenue, video views, live unique viewers."""
    creator = creator_view(profile)
    return {name: creator[name] for name in ("followers", "revenue_30d", "video_views", "live_unique_viewers")}


def inbox_item(doc: dict[str, Any]) -> dict[str, Any]:
    """DESIGN §5's inbox item, from a stored row (`to_document`): its flags are the
    derived fields stored with it, so no Conversation is rebuilt for a page."""
    last = doc["last_message"]
    return {
        "conversation_id": doc["_id"],
        "creator_id": doc["creator_id"],
        "creator": creator_view(doc["profile"]),
        "last_message": None if last is None else {**last, "sent_at": timestamp_json(from_micros(last["sent_at"]))},
        **{name: doc[name] for name in _FLAGS},
    }
