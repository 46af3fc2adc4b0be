"""Records a consumer could not process, kept for inspection and replay (I3, `im.dlq`)."""

import base64
from datetime import datetime
from typing import Literal

from pydantic import NonNegativeInt

from .base import Event, Label

PayloadEncoding = Literal["utf-8", "base64"]


class DeadLetter(Event):
    """The original record, verbatim: UTF-8 text when it decodes, else base64."""

    type: Literal["DeadLetter"] = "DeadLetter"
    service: Label
    topic: str
    partition: NonNegativeInt
    offset: NonNegativeInt
    key: str | None = None
    error: str
    payload: str
    payload_encoding: PayloadEncoding = "utf-8"

    @classmethod
    def for_record(
        cls,
        *,
        event_id: str,
        occurred_at: datetime,
        service: str,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes,
        error: str,
        command_id: str | None = None,
    ) -> "DeadLetter":
        """Builds the dead letter of a raw Kafka record without losing a byte of its value."""
        try:
            payload, encoding = value.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            payload, encoding = base64.b64encode(value).decode("ascii"), "base64"
        return cls(
            event_id=event_id,
            occurred_at=occurred_at,
            command_id=command_id,
            service=service,
            topic=topic,
            partition=partition,
            offset=offset,
            key=None if key is None else key.decode("utf-8", errors="backslashreplace"),
            error=error,
            payload=payload,
            payload_encoding=encoding,
        )

    def payload_bytes(self) -> bytes:
        """The original record value, for replay."""
        if self.payload_encoding == "base64":
            return base64.b64decode(self.payload)
        return self.payload.encode("utf-8")
