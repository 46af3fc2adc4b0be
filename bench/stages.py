"""python -m bench.stages --stage moderation|quota [--prefill N] [--sends K]

Times one stage's per-send decision directly against the database, without
Kafka: moderation's `ModerationStore.screening_facts` and quota's
`Admission.decide`, each called one at a time, K times per scenario.

Before timing, every collection the stage's hot path reads or writes is
prefilled with N documents of other sellers, creators and subjects (shaped like
the stage's own), because on FerretDB v1 any filter other than `{"_id": …}`
reads the whole collection: this shows whether a decision's cost grows with the
data. The filled database (`bench_stages_<stage>_<N>`) is kept and reused by
later runs; `--fresh` fills it again. Collections a given build does not use
are filled too, so builds before and after a change compare on the same data.

Finds the database like deploy/local: MONGODB_URI, or MONGO_PORT on
127.0.0.1 (27017 by default). Numbers from a shared machine are noisy: compare
runs made one after the other."""

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from im_contracts import (
    BlockCreator,
    CreatorProfileUpdated,
    SellerAccessStatus,
    SellerGmvUpdated,
    SendMessage,
    SetSellerAccess,
    UnblockCreator,
    new_event_id,
    utcnow,
)

BATCH = 1_000
Filler = Callable[[int], dict[str, Any]]


def _moderation_fillers(now: datetime) -> dict[str, Filler]:
    def version(i: int) -> dict[str, Any]:
        key = f"seller_blocks_creator:fill-s{i % 500}:fill-c{i // 2}"
        n = i % 2 + 1
        return {
            "_id": f"{key}#{n}", "subject": key, "kind": "seller_blocks_creator", "seller_id": f"fill-s{i % 500}",
            "creator_id": f"fill-c{i // 2}", "version": n, "state": "blocked" if n == 1 else "unblocked",
            "as_of": now, "as_of_us": i, "command_id": f"fill-mod-{i}", "verdict": "changed",
            "event": {"topic": "im.moderation.events", "key": f"fill-s{i % 500}", "value": b"{" + b"x" * 300 + b"}"},
        }

    def head(i: int) -> dict[str, Any]:
        return {"_id": f"seller_blocks_creator:fill-s{i % 500}:fill-c{i}", "version": 2}

    return {"state_versions": version, "state_heads": head}


def _quota_fillers(now: datetime) -> dict[str, Filler]:
    def seller(i: int) -> str:
        return f"fill-s{i % 500}"

    def conversation(i: int) -> str:
        return f"{seller(i)}:fill-c{i}"

    week = "2000-01-02"
    return {
        "seller_messages": lambda i: {"_id": f"fill-cmd-{i}", "conversation_id": conversation(i // 3), "at": now},
        "reply_slots": lambda i: {"_id": f"{conversation(i // 3)}#{i % 3 + 1}", "conversation_id": conversation(i // 3),
                                  "command_id": f"fill-cmd-{i}", "at": now},
        "reply_lifts": lambda i: {"_id": conversation(i), "command_id": f"fill-cmd-{i}", "at": now},
        "connections": lambda i: {"_id": conversation(i), "seller_id": seller(i), "creator_id": f"fill-c{i}", "via": "message", "at": now},
        "creator_profiles": lambda i: {"_id": f"fill-c{i}", "followers": i, "reported_at": now},
        "seller_gmv": lambda i: {"_id": f"fill-seller-{i}", "gmv_30d": "10.00", "reported_at": now},
        "claim_attempts": lambda i: {"_id": f"fill-cmd-{i}", "seller_id": seller(i), "at": now},
        "claim_heads": lambda i: {"_id": f"fill-seller-{i}:{week}", "unit": 7},
        "claims": lambda i: {
            "_id": f"{seller(i)}:{week}:{i // 500}", "seller_id": seller(i), "pool": week, "source": "weekly", "limit": None,
            "unit": i // 500, "tier": {"name": "T3", "gmv_30d_up_to": None, "weekly_limit": None, "max_creator_followers": None,
                                       "starter_pack": False},
            "command_id": f"fill-cmd-{i}", "creator_id": f"fill-c{i}", "claimed_at": now,
        },
        "charges": lambda i: {
            "_id": f"{seller(i)}:{week}:fill-c{i}", "week": week, "slot_id": f"{seller(i)}:{week}:{i // 500}", "charged_at": now,
            "command_id": f"fill-cmd-{i}", "seller_id": seller(i), "creator_id": f"fill-c{i}", "week_start": now,
            "source": "weekly", "used": i // 500 + 1, "limit": None,
        },
    }


async def prefill(db: AsyncDatabase, fillers: dict[str, Filler], n: int, fresh: bool) -> None:
    """Fill each collection with n documents once; a marker per collection remembers it."""
    meta = db["bench_meta"]
    for name, make in fillers.items():
        if not fresh and await meta.find_one({"_id": name, "filled": n}):
            continue
        started = time.perf_counter()
        await db.drop_collection(name)
        for first in range(0, n, BATCH):
            await db[name].insert_many([make(i) for i in range(first, min(n, first + BATCH))], ordered=False)
        await meta.replace_one({"_id": name}, {"filled": n}, upsert=True)
        print(f"  filled {name}: {n} documents in {time.perf_counter() - started:.1f} s", flush=True)


async def timed(label: str, calls: Iterator[Callable[[], Awaitable[Any]]], k: int, warmup: int = 3) -> dict[str, float]:
    for _ in range(warmup):
        await next(calls)()
    samples = []
    for _ in range(k):
        call = next(calls)
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1_000)
    samples.sort()
    result = {
        "p50": statistics.median(samples),
        "p90": samples[int(0.9 * (len(samples) - 1))],
        "mean": statistics.fmean(samples),
    }
    print(f"  {label:<44} p50 {result['p50']:7.2f} ms   p90 {result['p90']:7.2f} ms   mean {result['mean']:7.2f} ms", flush=True)
    return result


async def bench_moderation(db: AsyncDatabase, args: argparse.Namespace, run: str) -> None:
    from services.moderation.store import ModerationStore

    store = ModerationStore(db)
    await store.ensure_indexes()
    await prefill(db, _moderation_fillers(utcnow()), args.prefill, args.fresh)

    def pairs(seller: str) -> Iterator[Callable[[], Awaitable[Any]]]:
        i = 0
        while True:
            i += 1
            yield lambda i=i: store.screening_facts(seller, f"{run}-c{i}")

    # A seller whose access was revoked and restored, who blocked and unblocked a creator.
    touched, creator, at = f"{run}-touched", f"{run}-blocked", utcnow()
    for n, command in enumerate([
        SetSellerAccess(command_id=f"{run}-a1", occurred_at=at, seller_id=touched, status=SellerAccessStatus.SHOP_CLOSED),
        SetSellerAccess(command_id=f"{run}-a2", occurred_at=at + timedelta(seconds=1), seller_id=touched, status=SellerAccessStatus.ACTIVE),
        BlockCreator(command_id=f"{run}-b1", occurred_at=at, seller_id=touched, creator_id=creator),
        UnblockCreator(command_id=f"{run}-b2", occurred_at=at + timedelta(seconds=1), seller_id=touched, creator_id=creator),
    ]):
        await store.apply(command)

    def same_pair() -> Iterator[Callable[[], Awaitable[Any]]]:
        while True:
            yield lambda: store.screening_facts(touched, creator)

    await timed("screening_facts, untouched seller and pair", pairs(f"{run}-s"), args.sends)
    await timed("screening_facts, 2 versions of access and block", same_pair(), args.sends)


async def bench_quota(db: AsyncDatabase, args: argparse.Namespace, run: str) -> None:
    from services.quota.admission import Admission
    from services.quota.app import DEFAULT_POLICY_PATH, load_policy
    from services.quota.store import QuotaStore

    store = QuotaStore(db)
    await store.ensure_indexes()
    await prefill(db, _quota_fillers(utcnow()), args.prefill, args.fresh)
    admission = Admission(store, load_policy(DEFAULT_POLICY_PATH))
    at = utcnow()
    seller = f"{run}-s"  # T2: 500 new creators a week, no follower cap; this run reaches fewer
    await store.record_gmv(SellerGmvUpdated(event_id=new_event_id(), occurred_at=at, seller_id=seller, gmv_30d=Decimal(10_000)))

    async def profile(creator: str) -> None:
        await store.record_profile(CreatorProfileUpdated(
            event_id=new_event_id(), occurred_at=at, creator_id=creator, nickname=creator, followers=1_000,
            main_category="beauty", sales_gmv_30d=Decimal(1),
        ))

    counter = iter(range(10**9))

    def send(creator: str, sender: str = "seller") -> SendMessage:
        return SendMessage(command_id=f"{run}-cmd-{next(counter)}", occurred_at=at, seller_id=seller, creator_id=creator,
                           sender=sender, text="hello")

    def outreach() -> Iterator[Callable[[], Awaitable[Any]]]:
        for i in range(10**9):
            yield lambda i=i: admission.decide(send(f"{run}-new-{i}"))

    def follow_up() -> Iterator[Callable[[], Awaitable[Any]]]:
        for i in range(10**9):  # the 2nd-4th messages to a charged creator who has not replied (reply cap counted)
            yield lambda i=i: admission.decide(send(f"{run}-new-{i // 3}"))

    def reply() -> Iterator[Callable[[], Awaitable[Any]]]:
        for i in range(10**9):  # a seller's reply in a conversation the creator opened
            yield lambda i=i: admission.decide(send(f"{run}-talk-{i % 50}"))

    def creator_send() -> Iterator[Callable[[], Awaitable[Any]]]:
        for i in range(10**9):
            yield lambda i=i: admission.decide(send(f"{run}-talk-{i % 50}", sender="creator"))

    creators = [f"{run}-new-{i}" for i in range(args.sends + 3)] + [f"{run}-talk-{i}" for i in range(50)]
    await asyncio.gather(*(profile(c) for c in creators))
    await timed("decide: creator send", creator_send(), args.sends)
    await timed("decide: seller outreach, new creator (charged)", outreach(), args.sends)
    await timed("decide: seller follow-up, no reply yet", follow_up(), args.sends)
    await timed("decide: seller reply, creator wrote first", reply(), args.sends)


async def main(args: argparse.Namespace) -> None:
    uri = os.environ.get("MONGODB_URI") or f"mongodb://127.0.0.1:{os.environ.get('MONGO_PORT', '27017')}/"
    client = AsyncMongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=5_000)
    db = client[f"bench_stages_{args.stage}_{args.prefill}"]
    run = f"run{int(time.time() * 1000):x}"  # this run's ids: fresh sellers, creators and commands
    print(f"{args.stage}: database {db.name} ({uri}), {args.prefill} unrelated documents per collection, "
          f"{args.sends} sends per scenario, run {run}", flush=True)
    try:
        await (bench_moderation if args.stage == "moderation" else bench_quota)(db, args, run)
    finally:
        await client.close()


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.stages", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", choices=("moderation", "quota"), required=True)
    p.add_argument("--prefill", type=int, default=20_000, help="unrelated documents in each collection the stage uses")
    p.add_argument("--sends", type=int, default=100, help="timed decisions per scenario")
    p.add_argument("--fresh", action="store_true", help="drop and fill the collections again")
    return p.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
