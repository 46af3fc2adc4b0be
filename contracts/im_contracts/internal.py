"""Hops inside the send pipeline (`im.send.screened`, `im.send.admitted`).

Each carries the whole original `SendMessage`, so the next stage needs no lookup and
every stage judges the same command (I2). Only suite services read these topics.
"""

from typing import Literal

from pydantic import model_validator
from pydantic_core import PydanticCustomError

from .base import CommandOutcome, Timestamp
from .send import SendMessage


class _CarriesSend(CommandOutcome):
    send: SendMessage

    @model_validator(mode="after")
    def _same_command(self) -> "_CarriesSend":
        if self.command_id != self.send.command_id:
            raise PydanticCustomError("command_id_mismatch", "command_id must equal send.command_id")
        return self


class SendScreened(_CarriesSend):
    """Moderation passed the send (access, blocks, content)."""

    type: Literal["SendScreened"] = "SendScreened"
    screened_at: Timestamp


class SendAdmitted(_CarriesSend):
    """Quota admitted the send; `connected` is whether the creator was connected when judged."""

    type: Literal["SendAdmitted"] = "SendAdmitted"
    quota_charged: bool
    connected: bool
