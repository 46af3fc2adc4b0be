"""Base models and field types shared by every message (DESIGN §3)."""

import re
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

MAX_TEXT_LENGTH = 2_000
MAX_ID_LENGTH = 128

_PARTY_ID_PATTERN = r"^[A-Za-z0-9_-]+$"
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


# --- identifiers -------------------------------------------------------------

SellerId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_PARTY_ID_PATTERN)]
CreatorId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_PARTY_ID_PATTERN)]
ConversationId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_-]{1,64}$")]

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]
"""An opaque id minted by some service or upstream system (card, message, product…)."""
CommandId = Identifier
"""The idempotency key of a command: redelivery with the same id is the same command."""
EventId = Identifier


def conversation_id(seller_id: str, creator_id: str) -> str:
    """One conversation per (seller, creator) pair (R1)."""
    return f"{seller_id}:{creator_id}"


def new_event_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --- timestamps --------------------------------------------------------------


def _require_rfc3339(value: Any) -> Any:
    """Refuse what pydantic would otherwise guess at: unix numbers, bare dates, naive times."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _RFC3339.match(value):
        return value
    raise PydanticCustomError(
        "rfc3339_timestamp",
        "expected an RFC 3339 timestamp with a timezone, like 2026-01-04T08:00:00Z",
    )


Timestamp = Annotated[AwareDatetime, BeforeValidator(_require_rfc3339)]


# --- amounts -----------------------------------------------------------------


# Bounds that keep a decimal's plain notation short: "1e-999999999" is a valid
# Decimal whose plain notation is a billion characters long.
MAX_DECIMAL_DIGITS = 40
MAX_DECIMAL_PLACES = 12


def _money_to_json(value: Decimal) -> str:
    """Plain notation with at least cents: 1234.5 → "1234.50", 1E+3 → "1000.00"."""
    whole, _, fraction = format(value.copy_abs(), "f").partition(".")  # money is ≥ 0; drops "-0"
    return f"{whole}.{fraction.ljust(2, '0')}"


def _decimal_to_json(value: Decimal) -> str:
    return format(value, "f")


Money = Annotated[
    Decimal,
    Field(ge=0, allow_inf_nan=False, max_digits=MAX_DECIMAL_DIGITS, decimal_places=MAX_DECIMAL_PLACES),
    PlainSerializer(_money_to_json, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"}],
            "description": 'USD amount, written as a decimal string like "1234.50"; numbers are accepted on input',
        }
    ),
]
Rate = Annotated[
    Decimal,
    Field(ge=0, le=1, allow_inf_nan=False, max_digits=MAX_DECIMAL_DIGITS, decimal_places=MAX_DECIMAL_PLACES),
    PlainSerializer(_decimal_to_json, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 1},
                {"type": "string", "pattern": r"^(0(\.[0-9]+)?|1(\.0+)?)$"},
            ],
            "description": 'Fraction 0..1, written as a decimal string like "0.15"; numbers are accepted on input',
        }
    ),
]


# --- free text ---------------------------------------------------------------


def _trimmed_text(value: str) -> str:
    trimmed = value.strip()
    if not 1 <= len(trimmed) <= MAX_TEXT_LENGTH:
        raise PydanticCustomError(
            "text_length",
            "text must be 1 to 2,000 characters after trimming whitespace, got {length}",
            {"length": len(trimmed)},
        )
    return trimmed


Text = Annotated[
    str,
    AfterValidator(_trimmed_text),
    Field(description="Message text: 1–2,000 characters after trimming surrounding whitespace, stored trimmed (R14)"),
]
Label = Annotated[str, StringConstraints(min_length=1, max_length=256)]
"""A short human-readable name: product title, plan name, nickname, category."""
Note = Annotated[str, StringConstraints(min_length=1, max_length=500)]
"""An optional free-text remark attached to a command."""
Url = Annotated[str, StringConstraints(min_length=1, max_length=2_048)]


# --- models ------------------------------------------------------------------


def _require_type_tag(schema: dict[str, Any]) -> None:
    """On the wire `type` is mandatory even though Python code may omit it."""
    required = schema.setdefault("required", [])
    if "type" not in required:
        required.insert(0, "type")


_WIRE_CONFIG = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=False)


class ContractValue(BaseModel):
    """A nested object inside a message body: same wire rules, no type tag of its own."""

    model_config = _WIRE_CONFIG


class ContractModel(BaseModel):
    """A Kafka message body. Unknown fields are ignored so producers may add optional ones."""

    model_config = ConfigDict(**_WIRE_CONFIG, json_schema_extra=_require_type_tag)

    type: str
    """Discriminator: every concrete model narrows it to `Literal["<TypeName>"]`."""
    schema_version: int = Field(default=1, ge=1)


class Command(ContractModel):
    """A request to change state; `command_id` makes redelivery harmless (I2)."""

    command_id: CommandId
    occurred_at: Timestamp


class Event(ContractModel):
    """A fact. Facts reported by upstream systems have no command behind them."""

    event_id: EventId
    occurred_at: Timestamp
    command_id: CommandId | None = None


class CommandOutcome(Event):
    """An event caused by a command; it names that command so consumers can correlate it."""

    command_id: CommandId
