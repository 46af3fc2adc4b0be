"""Operating the suite: dead letters, consumer lag, the inbox rebuild, topics."""

import asyncio
import heapq
import json
import re
from collections import deque
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer
from aiokafka import ConsumerRecord, TopicPartition
from pydantic import TypeAdapter, ValidationError
from rich import box
from rich.console import Group
from rich.json import JSON
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from im_contracts import ContractError, DeadLetter, Timestamp, parse, utcnow
from im_contracts.topics import ALL_TOPICS, DLQ, INTERNAL_TOPICS

from imctl.app import app, settings
from imctl.bus import partition_counts, partitions_of, reader, record_at, writer
from imctl.output import BAD_INPUT, JsonOption, Refused, command, show, stderr, stdout
from imctl.reads import clip, key_values, when
from imctl.settings import ImctlSettings
from services.common import tokens
from services.common.auth import Role
from services.common.lag import PartitionLag, group_lags
from services.common.settings import KafkaSettings
from services.common.topics import ensure_topics

dlq = typer.Typer(help="Dead letters on im.dlq (I3): list them, show one decoded, replay them after a fix.", no_args_is_help=True)
app.add_typer(dlq, name="dlq")

LetterId = Annotated[list[str], typer.Argument(help="PARTITION:OFFSET of a dead letter on im.dlq, as `imctl dlq list` shows it.")]

RELATIVE = re.compile(r"^(\d+)([smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def since_of(text: str) -> datetime:
    """`15m`, `2h`, `1d`, `30s` ago, or an RFC 3339 timestamp."""
    if match := RELATIVE.match(text.strip()):
        return utcnow() - timedelta(**{UNITS[match[2]]: int(match[1])})
    try:
        return TypeAdapter(Timestamp).validate_python(text)
    except ValidationError:
        raise Refused(f"--since {text!r}: give 30s, 15m, 2h, 1d or an RFC 3339 time like 2026-03-01T08:00:00Z", BAD_INPUT) from None


def letter_id(text: str) -> tuple[int, int]:
    partition, _, offset = text.partition(":")
    if not (partition.isdigit() and offset.isdigit()):
        raise Refused(f"{text!r} is not a dead letter id: give PARTITION:OFFSET as `imctl dlq list` shows it", BAD_INPUT)
    return int(partition), int(offset)


def described(record: ConsumerRecord) -> dict[str, Any]:
    """A record of im.dlq as a document: where it is, then the DeadLetter's fields."""
    where = {"id": f"{record.partition}:{record.offset}", "dlq_partition": record.partition, "dlq_offset": record.offset}
    try:
        letter = parse(DLQ, record.value or b"")
    except ContractError as exc:
        return {**where, "unreadable": str(exc)}
    return {**where, **letter.model_dump(mode="json")}


# --- dlq list ------------------------------------------------------------------


async def newest_letters(since: datetime | None, topic: str | None, service: str | None, limit: int) -> tuple[list[dict[str, Any]], int]:
    """The newest `limit` dead letters matching the filters, oldest first, and how many records were read."""
    partitions = await partitions_of(settings(), DLQ)
    async with reader(settings()) as consumer:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        if since is None:
            starts = await consumer.beginning_offsets(partitions)
        else:
            found = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in partitions})
            starts = {tp: ends[tp] if found[tp] is None else found[tp].offset for tp in partitions}
        for tp in partitions:
            consumer.seek(tp, starts[tp])
        kept: dict[TopicPartition, deque[tuple[int, int, dict[str, Any]]]] = {tp: deque(maxlen=limit) for tp in partitions}
        remaining = {tp for tp in partitions if starts[tp] < ends[tp]}
        scanned = 0
        while remaining:
            for tp, records in (await consumer.getmany(*remaining, timeout_ms=1000, max_records=5000)).items():
                for record in records:
                    if record.offset >= ends[tp]:
                        break
                    scanned += 1
                    letter = described(record)
                    if (topic is None or letter.get("topic") == topic) and (service is None or letter.get("service") == service):
                        kept[tp].append((record.timestamp, record.offset, letter))
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    newest = heapq.merge(*kept.values(), key=lambda entry: entry[:2])
    return [letter for *_, letter in list(newest)[-limit:]], scanned


@command(dlq, "list")
def dlq_list(
    topic: Annotated[str | None, typer.Option(help="Only letters of records read from this topic.")] = None,
    service: Annotated[str | None, typer.Option(help="Only letters written by this service.")] = None,
    since: Annotated[str | None, typer.Option(help="Only letters since then: 30s, 15m, 2h, 1d or an RFC 3339 time.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, the newest.")] = 50,
    json_output: JsonOption = False,
) -> None:
    """The newest dead letters, oldest of them first."""
    letters, scanned = asyncio.run(newest_letters(since_of(since) if since else None, topic, service, limit))
    table = Table(title=f"dead letters on {DLQ}", box=box.SIMPLE_HEAD)
    for column in ("id", "at (UTC)", "service", "from"):
        table.add_column(column, no_wrap=True)
    table.add_column("error · key · payload", overflow="fold")  # the rest of the width; `dlq show` has it all
    for letter in letters:
        if "unreadable" in letter:
            table.add_row(letter["id"], "", "", "", f"[red]not a DeadLetter[/]: {clip(letter['unreadable'])}")
            continue
        payload = clip(letter["payload"], 40) + (" (base64)" if letter["payload_encoding"] == "base64" else "")
        table.add_row(
            letter["id"], when(letter["occurred_at"])[5:], letter["service"], f"{letter['topic']}/{letter['partition']}@{letter['offset']}",
            Text.assemble(clip(letter["error"], 90), "\n", (f"key {letter.get('key') or '—'} · {payload}", "dim")),
        )
    table.caption = f"{len(letters)} shown of {scanned} read; `imctl dlq show ID` decodes one"
    show(json_output, {"items": letters, "scanned": scanned}, table)


# --- dlq show / replay -----------------------------------------------------------


async def letters_at(ids: list[tuple[int, int]]) -> list[tuple[DeadLetter, dict[str, Any]]]:
    partitions = {tp.partition: tp for tp in await partitions_of(settings(), DLQ)}
    async with reader(settings()) as consumer:
        consumer.assign(list(partitions.values()))
        found = []
        for partition, offset in ids:
            record = await record_at(consumer, partitions[partition], offset) if partition in partitions else None
            if record is None:
                raise Refused(f"no dead letter at {partition}:{offset} on {DLQ}")
            document = described(record)
            if "unreadable" in document:
                raise Refused(f"{partition}:{offset} on {DLQ} is not a DeadLetter: {document['unreadable']}")
            found.append((DeadLetter.model_validate(json.loads(record.value)), document))
        return found


def payload_view(letter: DeadLetter) -> Text | JSON:
    value = letter.payload_bytes()
    try:
        return JSON(json.dumps(json.loads(value)))
    except ValueError:
        return Text(letter.payload if letter.payload_encoding == "utf-8" else f"{len(value)} bytes, base64: {clip(letter.payload, 200)}")


@command(dlq, "show")
def dlq_show(ids: LetterId, json_output: JsonOption = False) -> None:
    """Dead letters in full, with the original payload decoded."""
    found = asyncio.run(letters_at([letter_id(text) for text in ids]))
    views = []
    documents = []
    for letter, document in found:
        try:
            decoded: Any = json.loads(letter.payload_bytes())
        except ValueError:
            decoded = None
        documents.append({**document, "payload_decoded": decoded})
        fields = {name: value for name, value in document.items() if name not in ("payload", "dlq_partition", "dlq_offset")}
        views.append(Group(key_values(f"dead letter {document['id']}", fields), Text("payload:", style="bold"), payload_view(letter)))
    show(json_output, {"items": documents}, *views)


def replay_plan(found: list[tuple[DeadLetter, dict[str, Any]]]) -> list[tuple[DeadLetter, dict[str, Any]]]:
    """One republication per original record: a record read by several services has a letter from each."""
    seen: set[tuple[str, int, int]] = set()
    plan = []
    for letter, document in found:
        if (origin := (letter.topic, letter.partition, letter.offset)) not in seen:
            seen.add(origin)
            plan.append((letter, document))
    return plan


async def republish(plan: list[tuple[DeadLetter, dict[str, Any]]]) -> list[dict[str, Any]]:
    async with writer(settings()) as producer:
        done = []
        for letter, document in plan:
            # The key as the letter recorded it (a key that was not UTF-8 was stored with backslash escapes).
            metadata = await producer.send_and_wait(
                letter.topic,
                letter.payload_bytes(),
                key=None if letter.key is None else letter.key.encode("utf-8"),
                headers=[("correlation_id", f"imctl-replay-{document['id']}".encode()), ("replayed_from", f"{DLQ}:{document['id']}".encode())],
            )
            done.append({"id": document["id"], "topic": metadata.topic, "partition": metadata.partition, "offset": metadata.offset})
        return done


@command(dlq, "replay")
def dlq_replay(
    ids: LetterId,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be republished, publish nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Republish dead letters to their original topic and key, after a fix (the stages are idempotent)."""
    plan = replay_plan(asyncio.run(letters_at([letter_id(text) for text in ids])))
    table = Table(title="dry run: would republish" if dry_run else "republish")
    for column in ("id", "to topic", "key", "bytes", "error it had"):
        table.add_column(column)
    for letter, document in plan:
        table.add_row(document["id"], letter.topic, letter.key or "—", str(len(letter.payload_bytes())), clip(letter.error, 60))
    planned = [{"id": document["id"], "topic": letter.topic, "key": letter.key} for letter, document in plan]
    if dry_run:
        show(json_output, {"dry_run": True, "plan": planned}, table)
        return
    if not json_output:
        stdout().print(table)  # what is about to be republished, before the question
    if not yes and not typer.confirm(f"Republish {len(plan)} record(s) to their original topics?", err=True):
        raise Refused("not confirmed: nothing republished")
    done = asyncio.run(republish(plan))
    show(json_output, {"dry_run": False, "republished": done}, f"republished {len(done)} record(s): " + ", ".join(
        f"{item['id']} → {item['topic']}/{item['partition']}@{item['offset']}" for item in done))


# --- lag ---------------------------------------------------------------------------


def lag_table(rows: list[PartitionLag], per_partition: bool) -> Table:
    table = Table(title="consumer lag (committed offset against log end)")
    for column in ("group", "topic", "partition", "committed", "end", "lag"):
        table.add_column(column, justify="left" if column in ("group", "topic") else "right")
    if per_partition:
        for row in rows:
            table.add_row(row.group, row.topic, str(row.partition), "—" if row.committed is None else str(row.committed), str(row.end), str(row.lag))
    else:
        by_topic: dict[tuple[str, str], list[PartitionLag]] = {}
        for row in rows:
            by_topic.setdefault((row.group, row.topic), []).append(row)
        for (group, topic), parts in by_topic.items():
            table.add_row(group, topic, "all", str(sum(p.committed or 0 for p in parts)), str(sum(p.end for p in parts)), str(sum(p.lag for p in parts)))
    table.caption = f"total lag: {sum(row.lag for row in rows)}" if rows else "no consumer groups with committed offsets"
    return table


@command(app)
def lag(
    partitions: Annotated[bool, typer.Option("--partitions", help="One row per partition instead of per topic.")] = False,
    prefix: Annotated[str | None, typer.Option(help="Consumer group id prefix (default: IM_GROUP_PREFIX followed by a dot).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Consumer lag of every group of the suite, per topic."""
    current = settings()
    rows = asyncio.run(group_lags(current, prefix=prefix or f"{current.group_prefix}."))
    totals: dict[str, int] = {}
    for row in rows:
        totals[row.group] = totals.get(row.group, 0) + row.lag
    document = {
        "total": sum(totals.values()),
        "groups": totals,
        "partitions": [{"group": r.group, "topic": r.topic, "partition": r.partition, "committed": r.committed, "end": r.end, "lag": r.lag} for r in rows],
    }
    show(json_output, document, lag_table(rows, partitions))


# --- rebuild-inbox -------------------------------------------------------------------

RECORDS_DONE = re.compile(r"rebuild: (\d+)/(\d+) records")
ROWS_DONE = re.compile(r"rows written (\d+)/(\d+)")


@command(app, "rebuild-inbox")
def rebuild_inbox(
    target_prefix: Annotated[str, typer.Option(help="Database prefix of the fresh projection (its database must be empty).")],
    json_output: JsonOption = False,
) -> None:
    """Rebuild the inbox projection from Kafka into <target-prefix>_inbox_projection (see services.inbox_projection.rebuild)."""
    from services.inbox_projection.app import InboxSettings
    from services.inbox_projection.rebuild import TargetNotEmpty, rebuild

    current = settings()
    inbox_settings = InboxSettings(**current.model_dump(include=set(KafkaSettings.model_fields)), mongodb_uri=current.mongodb_uri)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=stderr(), disable=json_output)

    def report(line: str) -> None:
        # rebuild() reports progress as RebuildProgress.describe() lines: records replayed, then rows written.
        for pattern, task in ((RECORDS_DONE, replayed), (ROWS_DONE, written)):
            if match := pattern.search(line):
                progress.update(task, completed=int(match[1]), total=int(match[2]), visible=True)

    with progress:
        replayed = progress.add_task("records replayed", total=None)
        written = progress.add_task("rows written", total=None, visible=False)
        try:
            result = asyncio.run(rebuild(inbox_settings, target_prefix, report=report, report_every=0.25))
        except TargetNotEmpty as exc:
            raise Refused(str(exc)) from None
    database = inbox_settings.model_copy(update={"database_prefix": target_prefix}).database_name
    document = {
        "target_database": database,
        "replayed": dict(result.replayed),
        "invalid": dict(result.invalid),
        "rows_written": result.rows_written,
    }
    summary = key_values(f"rebuilt into {database}", {
        "records replayed": sum(result.replayed.values()),
        "invalid skipped": sum(result.invalid.values()),
        "rows written": result.rows_written,
        "switch over": f"start inbox-projection with IM_DATABASE_PREFIX={target_prefix}",
    })
    show(json_output, document, summary)


# --- topics --------------------------------------------------------------------------


async def create_and_count(current: ImctlSettings, partitions: int, check: bool) -> tuple[list[str], dict[str, int]]:
    created = [] if check else await ensure_topics(current, partitions, timeout=10.0)
    return created, await partition_counts(current, ALL_TOPICS)


@command(app)
def topics(
    partitions: Annotated[int, typer.Option(min=1, help="Partitions of a topic that has to be created.")] = 6,
    check: Annotated[bool, typer.Option("--check", help="Only verify: exit 1 when a topic is missing.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Create the contract's topics that are missing and show each one's partition count."""
    created, counts = asyncio.run(create_and_count(settings(), partitions, check))
    table = Table(title="topics")
    for column in ("topic", "partitions", "state"):
        table.add_column(column, justify="right" if column == "partitions" else "left")
    rows = []
    for topic in ALL_TOPICS:
        state = "created" if topic in created else "present" if topic in counts else "missing"
        rows.append({"topic": topic, "partitions": counts.get(topic), "state": state, "internal": topic in INTERNAL_TOPICS})
        table.add_row(topic + (" (internal)" if topic in INTERNAL_TOPICS else ""), str(counts.get(topic, "—")), state)
    show(json_output, {"topics": rows}, table)
    if missing := [row["topic"] for row in rows if row["state"] == "missing"]:
        raise Refused(f"missing topics: {', '.join(missing)} (run `imctl topics` to create them)")


# --- token ---------------------------------------------------------------------------


@command(app)
def token(
    role: Annotated[Role, typer.Option(help="Whose token: seller, creator or ops (DESIGN §7).")],
    sub: Annotated[str, typer.Option(help="The caller's id: the seller or creator id, or an operator's name.")],
    ttl: Annotated[int, typer.Option(min=1, max=86_400, help="Seconds until it expires.")] = 3600,
    json_output: JsonOption = False,
) -> None:
    """Mint a token for the read API with the local instance's signing key (IMCTL_AUTH_DIR)."""
    current = settings()
    if current.auth_dir is None or not (current.auth_dir / tokens.PRIVATE_KEY).exists():
        raise Refused("no signing key: set IMCTL_AUTH_DIR to a local instance's .data/<instance>/auth (make imctl does)")
    minted = tokens.mint(current.auth_dir, role, sub, ttl=ttl, issuer=current.auth_issuer)
    if json_output:
        show(True, {"token": minted, "role": role.value, "sub": sub, "ttl": ttl})
    else:
        typer.echo(minted)
