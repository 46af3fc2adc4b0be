"""Rebuild the inbox projection from Kafka into a fresh database.

    python -m services.inbox_projection.rebuild --target-prefix im_rebuilt_20260301 \\
        [--bootstrap-servers 127.0.0.1:9092] [--mongodb-uri mongodb://127.0.0.1:27017/]

Replays im.send.delivered, im.inbox.commands, im.moderation.events and
im.directory.events from the beginning of every partition up to the end
offsets seen when it starts, into the database `<target-prefix>_inbox_projection`
(which must be empty). Progress is reported every few seconds.

The events are folded in memory with the live service's own projection code
(`change_for`, the row and profile rules of domain.py), each partition in
order, then every row is written once, with the serving layout built from
the rows (each seller's buckets and directory, layout.py). A row does not
depend on how the topics interleave, so the result equals the live projection
for the same events.
Memory holds one row per conversation while it runs. Seller access
(SellerAccessChanged) is rebuilt alongside, so the new database can serve
reads on its own.

To switch the service over: stop inbox-projection, run the rebuild, start the
service with IM_DATABASE_PREFIX=<target-prefix>. Its consumer groups resume
from their committed offsets; what they re-apply is already in the rebuilt
database and changes nothing.
"""

import argparse
import asyncio
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer

from im_contracts import ContractError, SellerAccessChanged, parse
from im_contracts.topics import DIRECTORY_EVENTS, INBOX_COMMANDS, MODERATION_EVENTS, SEND_DELIVERED

from services.common.access import SellerAccessView
from services.common.kafka_client import client_options, partitions_of
from services.common.mongo import create_mongo_client
from services.inbox_projection.app import InboxSettings
from services.inbox_projection.domain import to_document
from services.inbox_projection.projector import ProjectionFold
from services.inbox_projection.store import InboxStore

SOURCE_TOPICS = (SEND_DELIVERED, INBOX_COMMANDS, MODERATION_EVENTS, DIRECTORY_EVENTS)


class TargetNotEmpty(Exception):
    pass


@dataclass
class RebuildProgress:
    totals: dict[str, int]
    replayed: Counter[str] = field(default_factory=Counter)
    invalid: Counter[str] = field(default_factory=Counter)
    rows_written: int = 0
    rows_total: int = 0

    def describe(self) -> str:
        done, total = sum(self.replayed.values()), sum(self.totals.values())
        share = 100 if not total else done * 100 // total
        topics = ", ".join(f"{t} {self.replayed[t]}/{n}" for t, n in self.totals.items())
        skipped = sum(self.invalid.values())
        text = f"rebuild: {done}/{total} records ({share}%): {topics}"
        if skipped:
            text += f"; {skipped} invalid skipped"
        if self.rows_total:
            text += f"; rows written {self.rows_written}/{self.rows_total}"
        return text


async def rebuild(
    settings: InboxSettings,
    target_prefix: str,
    report: Callable[[str], None] = print,
    report_every: float = 2.0,
) -> RebuildProgress:
    target = settings.model_copy(update={"database_prefix": target_prefix})
    mongo = create_mongo_client(target)
    consumer = AIOKafkaConsumer(
        **client_options(settings),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    try:
        db = mongo[target.database_name]
        if await db["conversations"].estimated_document_count() or await db["creator_profiles"].estimated_document_count():
            raise TargetNotEmpty(f"database {target.database_name} already holds a projection; choose a fresh --target-prefix")
        store = InboxStore(db)
        await store.ensure_indexes()

        partitions = await partitions_of(settings, *SOURCE_TOPICS)
        await consumer.start()
        consumer.assign(partitions)
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        progress = RebuildProgress({t: sum(ends[tp] - starts[tp] for tp in partitions if tp.topic == t) for t in SOURCE_TOPICS})
        remaining = {tp for tp in partitions if ends[tp] > starts[tp]}
        fold = ProjectionFold()
        access_changes: list[SellerAccessChanged] = []  # per seller in partition order, as the live service saw them

        last_report = time.monotonic()
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=5000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        break
                    try:
                        event = parse(tp.topic, record.value or b"")
                    except ContractError:
                        progress.invalid[tp.topic] += 1  # the live service dead-lettered it too
                    else:
                        if isinstance(event, SellerAccessChanged):
                            access_changes.append(event)
                        else:
                            fold.apply(event)
                    progress.replayed[tp.topic] += 1
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
            if time.monotonic() - last_report >= report_every:
                report(progress.describe())
                last_report = time.monotonic()

        rows = fold.rows()
        progress.rows_total = len(rows)
        await store.insert_profiles(fold.profiles)

        def written(n: int) -> None:
            nonlocal last_report
            progress.rows_written = n
            if time.monotonic() - last_report >= report_every:
                report(progress.describe())
                last_report = time.monotonic()

        await store.write_fresh([to_document(row) for row in rows], written)
        access = SellerAccessView(db["seller_access"])
        for change in access_changes:
            await access.apply(change)
        report(progress.describe() + f" — done into {target.database_name}")
        return progress
    finally:
        await consumer.stop()
        await mongo.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target-prefix", required=True, help="database prefix of the fresh projection")
    parser.add_argument("--bootstrap-servers", help="Kafka (default: KAFKA_BOOTSTRAP_SERVERS / IM_ settings)")
    parser.add_argument("--mongodb-uri", help="database server (default: MONGODB_URI / IM_ settings)")
    args = parser.parse_args()
    overrides = {
        name: value
        for name, value in (("kafka_bootstrap_servers", args.bootstrap_servers), ("mongodb_uri", args.mongodb_uri))
        if value
    }
    try:
        asyncio.run(rebuild(InboxSettings(**overrides), args.target_prefix, report=lambda line: print(line, flush=True)))
    except TargetNotEmpty as exc:
        sys.exit(str(exc))


if __name__ == "__main__":
    main()
