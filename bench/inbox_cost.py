"""Engine-independent cost of each inbox bench query on the serving layout: the
round trips, buckets and entries one page of 20 reads, for one seller of N
conversations built in memory (no database): `python -m bench.inbox_cost 100000`
(with PYTHONPATH=.:contracts and the venv's python)."""
import asyncio
import random
import sys
from datetime import UTC, datetime
from decimal import Decimal
from bench.inbox_reads import read_queries
from bench.inbox_rows import inbox_row
from im_contracts import InboxFolder
from services.inbox_projection.layout import fresh_layout
from services.inbox_projection.reads import EntryQuery, chain_options, chain_slots, cheapest_slots, read_page, view_of
from services.inbox_projection.query import InboxFilters

def filters_of(params: list[tuple[str, str]]) -> tuple[InboxFolder, InboxFilters]:
    d = {}
    for k, v in params:
        d.setdefault(k, []).append(v)

    def num(k, t):
        return t(d[k][0]) if k in d else None

    return InboxFolder(d["folder"][0]), InboxFilters(num("min_followers", int), num("max_followers", int), tuple(d.get("category", ())), num("min_sales_gmv", Decimal), num("max_sales_gmv", Decimal))

async def main(n: int) -> None:
    rng = random.Random(11)
    now = datetime.now(UTC)
    docs = [inbox_row("big", f"c{i}", i, rng, now) for i in range(n)]
    buckets, dirs = fresh_layout(docs)
    by_id = {b["_id"]: b for b in buckets}
    dmap = {d["_id"]: d for d in dirs}
    rows = {d["_id"]: d for d in docs}
    for name, params in read_queries().items():
        folder, filters = filters_of(params)
        stats = {"trips": 1, "buckets": 0, "entries": 0}  # the directories' $in
        async def rb(slots):
            stats["trips"] += 1
            stats["buckets"] += len(slots)
            stats["entries"] += sum(len(by_id[k]["e"]) for k, _ in slots)
            return [view_of(by_id[k]) for k, _ in slots]
        async def rr(ids):
            stats["trips"] += 1
            return [rows[i] for i in ids if i in rows]
        q = EntryQuery(folder, filters)
        page = await read_page(cheapest_slots(chain_options("big", q), {c: chain_slots(d, folder) for c, d in dmap.items()}, q, 21), q, 21, rb, rr)
        print(f"{n:>7} {name:60} rows {len(page):3} trips {stats['trips']:2} buckets {stats['buckets']:3} entries {stats['entries']:6}")

asyncio.run(main(int(sys.argv[1])))
