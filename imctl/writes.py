"""Commands of DESIGN §4, published like upstream publishes them, each waiting
for the event that answers it where one exists."""

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from im_contracts import (
    ArchiveConversation,
    BlockCreator,
    BlockSeller,
    BulkSendCompleted,
    BulkSendMessage,
    Command,
    EntryPoint,
    MarkConversationRead,
    MessageDelivered,
    MessageRejected,
    SellerAccessStatus,
    Sender,
    SendMessage,
    SetSellerAccess,
    StarConversation,
    UnarchiveConversation,
    UnblockCreator,
    UnblockSeller,
    UnstarConversation,
    new_event_id,
    utcnow,
)
from im_contracts.topics import BULK_COMPLETED, MODERATION_EVENTS, SEND_DELIVERED, SEND_REJECTED

from imctl.app import app, settings
from imctl.bus import bus
from imctl.output import BAD_INPUT, JsonOption, Outcome, Refused, command, show, stderr
from imctl.settings import get, path

Seller = Annotated[str, typer.Argument(help="seller_id")]
Creator = Annotated[str, typer.Argument(help="creator_id")]
CommandIdOption = Annotated[
    str | None, typer.Option("--command-id", help="Re-publish a command under its id (idempotent); default: a new id.")
]
WaitOption = Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the event that answers the command.")]
TimeoutOption = Annotated[float | None, typer.Option(help="Seconds to wait (default: IMCTL_TIMEOUT, 30).")]


def envelope(command_id: str | None) -> dict[str, Any]:
    return {"command_id": command_id or new_event_id(), "occurred_at": utcnow()}


def timed_out(what: str, command: Command, timeout: float) -> Refused:
    return Refused(f"no {what} for command {command.command_id} within {timeout:g}s (it may still come: imctl history / inbox)")


def published(command: Command, where: dict[str, Any]) -> str:
    return f"published {command.type} {command.command_id} to {where['topic']} (partition {where['partition']}, offset {where['offset']})"


# --- sends -------------------------------------------------------------------


def outcome_lines(outcome: MessageDelivered | MessageRejected) -> str:
    if isinstance(outcome, MessageDelivered):
        charged = "charged" if outcome.quota_charged else "not charged"
        return (
            f"[green]delivered[/] {outcome.conversation_id} [bold]seq {outcome.seq}[/] "
            f"(message {outcome.message_id}, {outcome.sender} via {outcome.entry_point}, quota {charged})"
        )
    return f"[red]rejected[/] by {outcome.stage}: [bold]{outcome.reason}[/] — {outcome.detail}"


async def send_and_wait(message: SendMessage, wait: bool, timeout: float) -> tuple[dict[str, Any], MessageDelivered | MessageRejected | None]:
    async with bus(settings(), watch=(SEND_DELIVERED, SEND_REJECTED) if wait else ()) as kafka:
        where = await kafka.publish(message)
        if not wait:
            return where, None
        async for event in kafka.events(timeout):
            if isinstance(event, (MessageDelivered, MessageRejected)) and event.command_id == message.command_id:
                return where, event
    raise timed_out("outcome", message, timeout)


@command(app)
def send(
    seller: Seller,
    creator: Creator,
    text: Annotated[str, typer.Argument(help="1–2,000 characters")],
    sender: Annotated[Sender, typer.Option("--as", help="Who sends it.")] = Sender.SELLER,
    entry_point: Annotated[EntryPoint, typer.Option(help="Where the send came from (R2).")] = EntryPoint.API,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for MessageDelivered or MessageRejected (exit 1).")] = False,
    timeout: TimeoutOption = None,
    command_id: CommandIdOption = None,
    json_output: JsonOption = False,
) -> None:
    """Publish a SendMessage; with --wait, print its outcome (a rejection exits 1)."""
    message = SendMessage(
        **envelope(command_id), seller_id=seller, creator_id=creator, sender=sender, text=text, entry_point=entry_point
    )
    timeout = timeout or settings().timeout
    where, outcome = asyncio.run(send_and_wait(message, wait, timeout))
    if outcome is None:
        show(json_output, {"command": message, "published": where}, published(message, where))
        return
    result = "delivered" if isinstance(outcome, MessageDelivered) else "rejected"
    show(json_output, {"command": message, "published": where, "outcome": result, "event": outcome}, outcome_lines(outcome))
    if isinstance(outcome, MessageRejected):
        raise Outcome(1)


def creators_of(creators: list[str], creators_file: Path | None) -> list[str]:
    """Arguments first, then the file's lines (blank lines and # comments skipped)."""
    listed = list(creators)
    if creators_file is not None:
        try:
            lines = creators_file.read_text().splitlines()
        except OSError as exc:
            raise Refused(f"cannot read {creators_file}: {exc.strerror}", BAD_INPUT) from None
        listed += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not listed:
        raise Refused("no creators: name them as arguments or with --creators-file", BAD_INPUT)
    return listed


def bulk_progress() -> Progress:
    return Progress(
        TextColumn("bulk"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[green]{task.fields[delivered]} delivered[/] [red]{task.fields[rejected]} rejected[/]"),
        TimeElapsedColumn(),
        console=stderr(),
    )


async def bulk_and_wait(message: BulkSendMessage, wait: bool, timeout: float, progress: Progress | None) -> dict[str, Any]:
    watch = (SEND_DELIVERED, SEND_REJECTED, BULK_COMPLETED) if wait else ()
    async with bus(settings(), watch=watch) as kafka:
        result: dict[str, Any] = {"published": await kafka.publish(message)}
        if not wait:
            return result
        outcomes: dict[str, str] = {}  # fan-out command id → outcome (a redelivered outcome counts once)
        completed: BulkSendCompleted | None = None
        task = progress.add_task("bulk", total=len(message.creator_ids), delivered=0, rejected=0) if progress else None
        async for event in kafka.events(timeout):
            if isinstance(event, BulkSendCompleted) and event.command_id == message.command_id:
                completed = event
            elif isinstance(event, (MessageDelivered, MessageRejected)) and event.bulk_id == message.command_id:
                outcomes[event.command_id] = "delivered" if isinstance(event, MessageDelivered) else "rejected"
            if progress is not None and task is not None:
                counts = Counter(outcomes.values())
                progress.update(task, completed=len(outcomes), delivered=counts["delivered"], rejected=counts["rejected"])
            # Every outcome precedes the summary, but the topics are read side by side: wait for both.
            if completed is not None and len(outcomes) >= completed.total:
                return {**result, "outcomes": dict(Counter(outcomes.values())), "completed": completed}
    raise timed_out("BulkSendCompleted" if completed is None else "outcome of every creator", message, timeout)


def summary_table(completed: BulkSendCompleted) -> Table:
    table = Table(title=f"bulk {completed.command_id} for seller {completed.seller_id}")
    table.add_column("outcome")
    table.add_column("creators", justify="right")
    table.add_row("[green]delivered[/]", str(completed.delivered))
    for reason, count in sorted(completed.rejected_by_reason.items()):
        table.add_row(f"[red]rejected[/] {reason}", str(count))
    table.add_row("[bold]total[/]", f"[bold]{completed.total}[/]")
    return table


@command(app)
def bulk(
    seller: Seller,
    text: Annotated[str, typer.Option(help="The message, 1–2,000 characters.")],
    creators: Annotated[list[str] | None, typer.Argument(help="creator_ids (up to 500, distinct)", show_default=False)] = None,
    creators_file: Annotated[Path | None, typer.Option(help="More creator_ids, one a line.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Show the outcomes as they come and the BulkSendCompleted summary.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the summary.")] = 120.0,
    command_id: CommandIdOption = None,
    json_output: JsonOption = False,
) -> None:
    """Publish a BulkSendMessage (R19); with --wait, a live progress bar and the summary by reason."""
    message = BulkSendMessage(
        **envelope(command_id), seller_id=seller, creator_ids=creators_of(creators or [], creators_file), text=text
    )
    progress = None if json_output or not wait else bulk_progress()
    if progress is None:
        result = asyncio.run(bulk_and_wait(message, wait, timeout, None))
    else:
        with progress:
            result = asyncio.run(bulk_and_wait(message, wait, timeout, progress))
    if "completed" not in result:
        show(json_output, {"command": message, **result}, published(message, result["published"]))
        return
    show(json_output, {"command": message, **result}, summary_table(result["completed"]))


# --- moderation and inbox commands -------------------------------------------


def already_holds(message: Command) -> bool:
    """Whether moderation's read API already shows what the command asks for: moderation
    then publishes no event (it announces changes only), so there is nothing to wait for.
    False when it cannot tell (a revoked seller's blocks are not readable, R13)."""
    current = settings()
    try:
        if isinstance(message, SetSellerAccess):
            return get(current, "moderation", path("v1", "sellers", message.seller_id, "access"))["status"] == message.status
        blocks = get(current, "moderation", path("v1", "sellers", message.seller_id, "blocks"))
    except Refused:
        return False
    listed = blocks["blocked_creators"] if isinstance(message, (BlockCreator, UnblockCreator)) else blocks["blocked_by_creators"]
    return (message.creator_id in listed) == isinstance(message, (BlockCreator, BlockSeller))


async def publish_and_wait(message: Command, wait: bool, timeout: float) -> dict[str, Any]:
    """Publishes a moderation command and, with `wait`, returns with the event that answers it."""
    async with bus(settings(), watch=(MODERATION_EVENTS,) if wait else ()) as kafka:
        result: dict[str, Any] = {"command": message, "published": await kafka.publish(message)}
        if not wait:
            return result
        async for event in kafka.events(timeout):
            if getattr(event, "command_id", None) == message.command_id:
                return {**result, "event": event}
    raise timed_out("event", message, timeout)


def moderate(message: Command, wait: bool, timeout: float | None, json_output: bool) -> None:
    started = time.monotonic()
    unchanged = wait and already_holds(message)
    result = asyncio.run(publish_and_wait(message, wait and not unchanged, timeout or settings().timeout))
    if unchanged:
        result["unchanged"] = True
        show(json_output, result, published(message, result["published"]) + ": already so, moderation announces no change")
        return
    if "event" not in result:
        show(json_output, result, published(message, result["published"]))
        return
    event = result["event"]
    parties = " ".join(f"{field} {getattr(event, field)}" for field in ("seller_id", "creator_id", "status", "reason") if getattr(event, field, None))
    show(json_output, result, f"[green]{event.type}[/] {parties} ({time.monotonic() - started:.1f}s)")


def moderation_command(name: str, model: type[Command], help_text: str) -> None:
    """`imctl <name> SELLER CREATOR`: a moderation command answered by its event."""

    def run(
        seller: Seller,
        creator: Creator,
        wait: WaitOption = True,
        timeout: TimeoutOption = None,
        json_output: JsonOption = False,
    ) -> None:
        moderate(model(**envelope(None), seller_id=seller, creator_id=creator), wait, timeout, json_output)

    run.__doc__ = help_text
    command(app, name)(run)



@command(app)
def access(
    seller: Seller,
    status: Annotated[SellerAccessStatus, typer.Argument(help="active | shop_closed | deactivated")],
    reason: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
    wait: WaitOption = True,
    timeout: TimeoutOption = None,
    json_output: JsonOption = False,
) -> None:
    """Set a seller's access (R13); waits for SellerAccessChanged."""
    moderate(SetSellerAccess(**envelope(None), seller_id=seller, status=status, reason=reason), wait, timeout, json_output)


def inbox_command(name: str, model: type[Command], help_text: str) -> None:
    """`imctl <name> SELLER CREATOR`: an inbox command; the projection answers with no event."""

    def run(seller: Seller, creator: Creator, json_output: JsonOption = False) -> None:
        publish_inbox(model(**envelope(None), seller_id=seller, creator_id=creator), json_output)

    run.__doc__ = help_text
    command(app, name)(run)


def publish_inbox(message: Command, json_output: bool) -> None:
    result = asyncio.run(publish_and_wait(message, wait=False, timeout=0))
    show(json_output, result, published(message, result["published"]) + " (the inbox applies it; no event answers it)")


# The commands that name one conversation's two parties.
for register, name, model, help_text in (
    (moderation_command, "block", BlockCreator, "The seller blocks the creator (R11); waits for CreatorBlocked."),
    (moderation_command, "unblock", UnblockCreator, "The seller unblocks the creator; waits for CreatorUnblocked."),
    (moderation_command, "block-seller", BlockSeller, "The creator blocks the seller (R12); waits for SellerBlocked."),
    (moderation_command, "unblock-seller", UnblockSeller, "The creator unblocks the seller; waits for SellerUnblocked."),
    (inbox_command, "star", StarConversation, "Star a conversation (R15)."),
    (inbox_command, "unstar", UnstarConversation, "Unstar a conversation."),
    (inbox_command, "archive", ArchiveConversation, "Archive a conversation (a new creator message un-archives it)."),
    (inbox_command, "unarchive", UnarchiveConversation, "Unarchive a conversation."),
):
    register(name, model, help_text)


@command(app)
def read(
    seller: Seller,
    creator: Creator,
    up_to_seq: Annotated[int | None, typer.Option(help="Mark read up to this seq (default: everything).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Mark a conversation read (R17)."""
    publish_inbox(MarkConversationRead(**envelope(None), seller_id=seller, creator_id=creator, up_to_seq=up_to_seq), json_output)
