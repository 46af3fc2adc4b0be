"""Quota rules without I/O: the policy, tiers, weeks, and how a seller's send is
judged (R3-R10, R18, R20). The store and the admission flow feed these functions
what they know; nothing here reads a clock or a database."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import IntEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, NonNegativeInt, field_validator, model_validator

from im_contracts import ChargeSource, MessageKind, ReasonCode

STARTER_POOL = "starter"
"""The starter pack's units are keyed by this instead of a week: it never refills (R7)."""


def _none_as_null(*words: str) -> Any:
    """Lets the policy file say `unlimited` / `none` where the model means null."""

    def convert(value: Any) -> Any:
        return None if isinstance(value, str) and value.strip().lower() in words else value

    return BeforeValidator(convert)


class Weekday(IntEnum):
    """Named like the policy file; values are `date.weekday()`'s."""

    monday = 0
    tuesday = 1
    wednesday = 2
    thursday = 3
    friday = 4
    saturday = 5
    sunday = 6


class Tier(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=32)
    gmv_30d_up_to: Annotated[Annotated[Decimal, Field(ge=0, allow_inf_nan=False)] | None, _none_as_null("none", "unbounded")]
    """Inclusive upper bound of the seller's 30-day GMV; null for the top tier."""
    weekly_limit: Annotated[NonNegativeInt | None, _none_as_null("unlimited", "none")]
    """New (unconnected) creators a week; null = unlimited."""
    max_creator_followers: Annotated[NonNegativeInt | None, _none_as_null("none", "unlimited")]
    """Largest unconnected creator this tier may reach; null = no cap."""
    starter_pack: bool = False
    """Draws on the one-time starter pack instead of a weekly limit (R7)."""

    def admits_creator(self, followers: int | None) -> bool:
        """R8: an unknown profile counts as above any cap (but no cap admits everyone)."""
        if self.max_creator_followers is None:
            return True
        return followers is not None and followers <= self.max_creator_followers


class WeekPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    starts_on: Weekday = Weekday.sunday
    at: time = time(0, 0)
    time_zone: str = "America/Los_Angeles"

    @field_validator("starts_on", mode="before")
    @classmethod
    def _weekday_by_name(cls, value: Any) -> Any:
        return Weekday[value.strip().lower()] if isinstance(value, str) else value

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)  # ZoneInfo caches instances by key


@dataclass(frozen=True, slots=True)
class Week:
    """One quota week. `start` and `end` are UTC instants; `end` is the next week's start
    (when the quota resets). `key` is the local start date, naming the week in the ledger."""

    start: datetime
    end: datetime
    key: str


class QuotaPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    week: WeekPolicy = WeekPolicy()
    starter_pack_size: NonNegativeInt = 1000
    reply_cap: NonNegativeInt = 5
    tiers: tuple[Tier, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _tiers_partition_gmv(self) -> "QuotaPolicy":
        names = [tier.name for tier in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"tier names must be unique: {names}")
        bounds = [tier.gmv_30d_up_to for tier in self.tiers]
        if bounds[-1] is not None or any(bound is None for bound in bounds[:-1]):
            raise ValueError("only the last tier may (and must) have gmv_30d_up_to: none")
        if any(lower >= upper for lower, upper in zip(bounds[:-2], bounds[1:-1])):
            raise ValueError(f"gmv_30d_up_to must increase from tier to tier: {bounds}")
        return self

    def tier_for(self, gmv_30d: Decimal | None) -> Tier:
        """R6: the first tier whose bound covers the GMV; unknown GMV counts as 0."""
        gmv = gmv_30d if gmv_30d is not None else Decimal(0)
        return next(t for t in self.tiers if t.gmv_30d_up_to is None or gmv <= t.gmv_30d_up_to)

    def week_of(self, instant: datetime) -> Week:
        """R10: the week containing `instant`, with boundaries at the policy's local
        weekday and time, so weeks spanning a DST change last 167 or 169 hours."""
        local = instant.astimezone(self.week.zone)
        start_date = local.date() - timedelta(days=(local.weekday() - self.week.starts_on) % 7)
        if self._boundary(start_date) > instant:  # on the start day, before the start time
            start_date -= timedelta(days=7)
        return Week(self._boundary(start_date), self._boundary(start_date + timedelta(days=7)), start_date.isoformat())

    def local(self, instant: datetime) -> datetime:
        """An instant shown in the policy's time zone (how weeks are reported)."""
        return instant.astimezone(self.week.zone)

    def _boundary(self, day: date) -> datetime:
        # A local time skipped by a DST change resolves with the earlier offset (fold=0),
        # so every start day still has exactly one boundary instant.
        return datetime.combine(day, self.week.at, tzinfo=self.week.zone).astimezone(UTC)


# --- the ledger's records ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Allowance:
    """What a charge draws on: the starter pack or one week's limit (null = unlimited)."""

    source: ChargeSource
    pool: str
    limit: int | None


def allowance(tier: Tier, week: Week, policy: QuotaPolicy) -> Allowance:
    if tier.starter_pack:
        return Allowance(ChargeSource.STARTER_PACK, STARTER_POOL, policy.starter_pack_size)
    return Allowance(ChargeSource.WEEKLY, week.key, tier.weekly_limit)


@dataclass(frozen=True, slots=True)
class Units:
    """Who holds the units of one allowance: `holders[n - 1]` holds unit n, None once it
    was given back (free for the next taker). Units are taken by appending while fewer
    than the limit are handed out, or by taking a free one, so a unit has one holder."""

    holders: tuple[str | None, ...] = ()

    def held_by(self, command_id: str) -> int | None:
        return next((n for n, holder in enumerate(self.holders, 1) if holder == command_id), None)

    def first_free(self) -> int | None:
        return next((n for n, holder in enumerate(self.holders, 1) if holder is None), None)

    @property
    def used(self) -> int:
        return sum(1 for holder in self.holders if holder is not None)


@dataclass(frozen=True, slots=True)
class Claim:
    """Unit `used` of an allowance, held by a send to pay for its charge."""

    command_id: str
    allowance: Allowance
    used: int
    tier: Tier


@dataclass(frozen=True, slots=True)
class Charge:
    """The one charge of a (seller, creator, week) (R4)."""

    command_id: str
    seller_id: str
    creator_id: str
    week_start: datetime
    source: ChargeSource
    used: int
    limit: int | None


def remaining_allowance(tier: Tier, policy: QuotaPolicy, *, weekly_used: int, starter_used: int) -> int | None:
    """New creators the seller may still reach this week; null = unlimited."""
    if tier.starter_pack:
        return max(0, policy.starter_pack_size - starter_used)
    if tier.weekly_limit is None:
        return None
    return max(0, tier.weekly_limit - weekly_used)


@dataclass(frozen=True, slots=True)
class ReplySlots:
    """The first `reply_cap + 1` seller messages admitted in a conversation not yet
    replied to (R9), each command counted once; `holders[n - 1]` is the command of the
    n-th, None while fewer were admitted. Once all are held the count is saturated:
    whichever command is left out, at least `reply_cap` others are counted."""

    holders: tuple[str | None, ...]

    @classmethod
    def of(cls, counted: list[str], slots: int) -> "ReplySlots":
        return cls(tuple(counted[:slots]) + (None,) * max(0, slots - len(counted)))

    def count(self, excluding_command: str | None = None) -> int:
        """Seller messages admitted, up to the reply cap, not counting `excluding_command`'s own."""
        held = sum(1 for holder in self.holders if holder is not None and holder != excluding_command)
        return min(held, len(self.holders) - 1)

    def held_by(self, command_id: str) -> int | None:
        return next((n for n, holder in enumerate(self.holders, 1) if holder == command_id), None)

    def first_free(self) -> int | None:
        """The next slot to count into, or None when saturated."""
        return next((n for n, holder in enumerate(self.holders, 1) if holder is None), None)


def reply_slot_count(policy: QuotaPolicy) -> int:
    return policy.reply_cap + 1


# --- judging a seller's send -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Standing:
    """What quota knows about a (seller, creator) pair when it judges a seller's send."""

    connected: bool
    reply_lifted: bool
    seller_messages: int
    """Seller messages already admitted in the conversation (this send excluded), up to the
    reply cap; not counted (0) once the cap is lifted."""
    creator_followers: int | None
    tier: Tier
    """The tier frozen for the week, or the one the latest GMV gives."""
    tier_frozen: bool
    """Whether a charge already froze `tier` for the week (R6)."""
    charged_this_week: bool

    @property
    def seller_messages_without_reply(self) -> int:
        return 0 if self.reply_lifted else self.seller_messages


@dataclass(frozen=True, slots=True)
class Admit:
    """Admitted without a charge."""


@dataclass(frozen=True, slots=True)
class Refuse:
    reason: ReasonCode
    detail: str


@dataclass(frozen=True, slots=True)
class ChargeFirst:
    """Admitted once a unit of the tier's allowance is claimed; refused if none is left."""

    tier: Tier


Verdict = Admit | Refuse | ChargeFirst


def judge_seller_send(kind: MessageKind, standing: Standing, policy: QuotaPolicy) -> Verdict:
    """R20's quota part, in order: reply cap (R9), follower cap (R8), quota (R3, R4, R5)."""
    if kind is MessageKind.SAMPLE_REVIEW:
        return Admit()  # R18: the answer to the creator's own request is a reply
    if standing.seller_messages_without_reply >= policy.reply_cap:
        return Refuse(
            ReasonCode.REPLY_REQUIRED,
            f"You can send up to {policy.reply_cap} messages until the creator replies.",
        )
    if standing.connected:
        return Admit()
    if not standing.tier.admits_creator(standing.creator_followers):
        return Refuse(ReasonCode.CREATOR_NOT_ELIGIBLE, _not_eligible_detail(standing))
    if standing.charged_this_week:
        return Admit()
    return ChargeFirst(standing.tier)


def quota_exhausted(tier: Tier, week: Week, policy: QuotaPolicy) -> Refuse:
    if tier.starter_pack:
        detail = (
            f"Your one-time starter pack of {policy.starter_pack_size:,} new creators is used up; "
            "it does not refill. Connected creators stay reachable."
        )
    else:
        detail = (
            f"You have reached {tier.weekly_limit:,} new creators this week; the quota resets at "
            f"{policy.local(week.end).isoformat()}. Connected creators stay reachable."
        )
    return Refuse(ReasonCode.QUOTA_EXHAUSTED, detail)


def _not_eligible_detail(standing: Standing) -> str:
    cap = f"{standing.tier.max_creator_followers:,}"
    if standing.creator_followers is None:
        return f"This creator's follower count is unknown; tier {standing.tier.name} may reach creators with up to {cap} followers."
    return f"Tier {standing.tier.name} may reach creators with up to {cap} followers; this creator has {standing.creator_followers:,}."
