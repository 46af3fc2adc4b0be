"""The read API of DESIGN §5 as tables (or its own JSON with --json)."""

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer
from rich.table import Table

from im_contracts import InboxFolder

from imctl.app import app, settings
from imctl.output import JsonOption, command, show
from imctl.settings import get, path
from imctl.writes import Creator, Seller

BLOCKED_ICON = "🚫"  # R11: the seller blocked the creator
BLOCKED_BY_CREATOR_ICON = "⛔"  # R12: the creator blocked the seller
STARRED_ICON = "★"


def clip(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def when(timestamp: str | None) -> str:
    """RFC 3339 to minutes, as stored (UTC)."""
    return (timestamp or "")[:16].replace("T", " ")


def key_values(title: str, document: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for name, value in document.items():
        table.add_row(name, "—" if value is None else str(value))
    return table


def amount(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise typer.BadParameter(f"{text!r} is not an amount in USD, like 1500 or 99.90") from None


# --- inbox -------------------------------------------------------------------


def inbox_row(item: dict[str, Any]) -> list[str]:
    creator = item.get("creator") or {}
    last = item.get("last_message") or {}
    marks = [
        BLOCKED_ICON if item["blocked"] else "",
        BLOCKED_BY_CREATOR_ICON if item["blocked_by_creator"] else "",
        STARRED_ICON if item["starred"] else "",
        "archived" if item["archived"] else "",
        "unreplied" if item["unreplied"] else "",
    ]
    unread = item["unread_count"]
    return [
        item["creator_id"] + (f"\n{creator['nickname']}" if creator.get("nickname") else ""),
        "" if creator.get("followers") is None else f"{creator['followers']:,}",
        creator.get("main_category") or "",
        f"[bold]{unread}[/]" if unread else "0",
        f"#{last.get('seq')} {last.get('sender')}: {clip(last.get('text') or '')}" if last else "",
        when(last.get("sent_at")),
        " ".join(mark for mark in marks if mark),
    ]


def inbox_table(seller: str, folder: InboxFolder, page: dict[str, Any], counts: dict[str, int]) -> Table:
    totals = " · ".join(f"{name} {count}" for name, count in counts.items())
    table = Table(title=f"inbox of {seller}: {folder.value}")
    table.add_column("creator")
    table.add_column("followers", justify="right")
    table.add_column("category")
    table.add_column("unread", justify="right")
    table.add_column("last message")
    table.add_column("sent at (UTC)")
    table.add_column("")
    for item in page["items"]:
        table.add_row(*inbox_row(item))
    legend = f"{BLOCKED_ICON} you blocked the creator · {BLOCKED_BY_CREATOR_ICON} the creator blocked you · {STARRED_ICON} starred"
    more = f"next page: --cursor {page['next_cursor']}" if page.get("next_cursor") else "no more rows"
    table.caption = f"{totals}\n{legend}\n{more}"
    return table


@command(app)
def inbox(
    seller: Seller,
    folder: Annotated[InboxFolder, typer.Option(help="R15's folder.")] = InboxFolder.MESSAGES,
    min_followers: Annotated[int | None, typer.Option(min=0)] = None,
    max_followers: Annotated[int | None, typer.Option(min=0)] = None,
    category: Annotated[list[str] | None, typer.Option(help="Creator main category; repeat for several.")] = None,
    min_sales_gmv: Annotated[Decimal | None, typer.Option(parser=amount, help="Creator 30-day sales GMV, USD.")] = None,
    max_sales_gmv: Annotated[Decimal | None, typer.Option(parser=amount)] = None,
    limit: Annotated[int | None, typer.Option(min=1)] = None,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page.")] = None,
    json_output: JsonOption = False,
) -> None:
    """A seller's inbox (R15, R16): unread counts, last message, blocked marks (R11, R12)."""
    page = get(
        settings(),
        "inbox-projection",
        path("v1", "sellers", seller, "inbox"),
        folder=folder.value,
        min_followers=min_followers,
        max_followers=max_followers,
        category=category or None,
        min_sales_gmv=None if min_sales_gmv is None else str(min_sales_gmv),
        max_sales_gmv=None if max_sales_gmv is None else str(max_sales_gmv),
        limit=limit,
        cursor=cursor,
    )
    counts = get(settings(), "inbox-projection", path("v1", "sellers", seller, "inbox", "counts"))
    show(json_output, {"seller_id": seller, "folder": folder.value, "counts": counts, **page}, inbox_table(seller, folder, page, counts))


# --- conversations, quota, blocks ---------------------------------------------


@command(app)
def history(
    seller: Seller,
    creator: Creator,
    before_seq: Annotated[int | None, typer.Option(min=1, help="Older than this seq (paging back).")] = None,
    limit: Annotated[int | None, typer.Option(min=1)] = None,
    json_output: JsonOption = False,
) -> None:
    """A conversation's messages, newest first (R1)."""
    page = get(settings(), "messaging", path("v1", "conversations", seller, creator, "messages"), before_seq=before_seq, limit=limit)
    table = Table(title=f"conversation {seller}:{creator}")
    for column in ("seq", "sender", "kind", "text", "sent at (UTC)", "entry point", "quota"):
        table.add_column(column, justify="right" if column == "seq" else "left", no_wrap=column != "text", ratio=1 if column == "text" else None)
    for message in page["items"]:
        table.add_row(
            str(message["seq"]), message["sender"], message["kind"], clip(message["text"], 80), when(message["sent_at"]),
            message["entry_point"], "charged" if message.get("quota_charged") else "",
        )
    older = page.get("next_before_seq")
    table.caption = f"older: --before-seq {older}" if older else "no older messages"
    show(json_output, {"seller_id": seller, "creator_id": creator, **page}, table)


@command(app)
def quota(
    seller: Seller,
    creator: Annotated[str | None, typer.Option(help="Also this creator's outreach state (connected, reply cap, …).")] = None,
    json_output: JsonOption = False,
) -> None:
    """A seller's weekly outreach quota (R3–R10)."""
    allowance = get(settings(), "quota", path("v1", "sellers", seller, "quota"))
    document: dict[str, Any] = {"quota": allowance}
    tables = [key_values(f"quota of {seller}", allowance)]
    if creator is not None:
        document["outreach"] = get(settings(), "quota", path("v1", "sellers", seller, "creators", creator, "outreach"))
        tables.append(key_values(f"outreach of {seller} to {creator}", document["outreach"]))
    show(json_output, document, *tables)


@command(app)
def blocks(seller: Seller, json_output: JsonOption = False) -> None:
    """Who a seller blocked (R11) and who blocked the seller (R12)."""
    found = get(settings(), "moderation", path("v1", "sellers", seller, "blocks"))
    table = Table(title=f"blocks of {seller}")
    table.add_column(f"{BLOCKED_ICON} blocked by the seller (R11)")
    table.add_column(f"{BLOCKED_BY_CREATOR_ICON} blocked the seller (R12)")
    mine, theirs = found["blocked_creators"], found["blocked_by_creators"]
    for index in range(max(len(mine), len(theirs))):
        table.add_row(mine[index] if index < len(mine) else "", theirs[index] if index < len(theirs) else "")
    if not mine and not theirs:
        table.caption = "no blocks"
    show(json_output, {"seller_id": seller, **found}, table)
