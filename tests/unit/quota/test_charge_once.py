"""Property: whatever the sends, their order and their interleaving, each creator
is charged at most once per seller and week (R4), a week never charges more than
its frozen tier allows nor the starter pack more than its size (R3, R6, R7), and
redeciding a send (a crash before its decision was stored) never charges again (I2)."""

import asyncio
import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from im_contracts import ChargeSource, MessageKind

from services.quota.admission import Admission
from tests.unit.quota.builders import SMALL, published, send
from tests.unit.quota.fakes import InMemoryQuotaStore

FIRST_WEEK = datetime(2026, 2, 22, 8, 0, tzinfo=UTC)  # Sunday 00:00 LA; the third week has the DST change
SELLERS, CREATORS = ("s0", "s1"), tuple(f"c{i}" for i in range(7))


@dataclass(frozen=True)
class Send:
    seller: str
    creator: str
    week: int
    offset_minutes: int
    kind: MessageKind
    from_creator: bool


@dataclass(frozen=True)
class Gmv:
    seller: str
    amount: Decimal


@dataclass(frozen=True)
class Redecide:
    index: int


sends = st.builds(
    Send,
    st.sampled_from(SELLERS),
    st.sampled_from(CREATORS),
    st.integers(0, 2),
    st.integers(0, 7 * 24 * 60 - 1),
    st.sampled_from([MessageKind.TEXT, MessageKind.TEXT, MessageKind.PRODUCT_CARD, MessageKind.TARGET_COLLABORATION, MessageKind.SAMPLE_REVIEW]),
    st.sampled_from([False, False, False, True]),
)
steps = st.one_of(
    st.lists(sends, min_size=1, max_size=8),  # a batch handled concurrently
    st.builds(Gmv, st.sampled_from(SELLERS), st.sampled_from([Decimal(0), Decimal(900), Decimal(20_000), Decimal(90_000)])),
    st.builds(Redecide, st.integers(0, 1_000)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(steps, min_size=1, max_size=12), st.randoms(use_true_random=False))
def test_each_creator_is_charged_at_most_once_a_week_and_never_over_the_limit(script: list, rng: random.Random) -> None:
    asyncio.run(_run(script, rng))


async def _run(script: list, rng: random.Random) -> None:
    store = InMemoryQuotaStore(rng=rng)
    store.followers_by_creator.update({c: 1_000 * (i + 1) for i, c in enumerate(CREATORS)} | {"c6": 30_000})
    admission = Admission(store, SMALL)
    decided: list = []  # (command, first decision)
    connected_before: set[tuple[str, str]] = set()

    for step in script:
        if isinstance(step, Gmv):
            store.gmv_by_seller[step.seller] = step.amount
        elif isinstance(step, Redecide) and decided:
            index = step.index % len(decided)
            command, first = decided[index]
            again = await admission.decide(command)
            if (charged := published(first).get("OutreachCharged")) is not None:
                assert published(again)["OutreachCharged"].used == charged.used  # the same charge, not another
            decided[index] = (command, again)  # had the first never been stored, this one stands
        elif isinstance(step, list):
            commands = [
                send(s.seller, s.creator, FIRST_WEEK + timedelta(weeks=s.week, minutes=s.offset_minutes),
                     sender="creator" if s.from_creator else "seller", kind=MessageKind.TEXT if s.from_creator else s.kind)
                for s in step
            ]
            batch = await asyncio.gather(*(admission.decide(c) for c in commands))
            for command, decision in zip(commands, batch):
                charged = decision.outcome == "admitted:charged"
                assert not (charged and (command.seller_id, command.creator_id) in connected_before)  # R5
                assert not (charged and command.kind is MessageKind.SAMPLE_REVIEW)  # R18
            decided += zip(commands, batch)
            connected_before |= {(c.seller_id, c.creator_id) for c in commands if c.sender == "creator"}

    charges = [published(d)["OutreachCharged"] for _, d in decided if d.outcome == "admitted:charged"]
    per_pair_week = Counter((c.seller_id, c.creator_id, c.week_start) for c in charges)
    assert all(n == 1 for n in per_pair_week.values()), per_pair_week  # R4
    assert len(store.charges) == len(per_pair_week)

    for seller in SELLERS:
        starter = [c for c in charges if c.seller_id == seller and c.source is ChargeSource.STARTER_PACK]
        assert len(starter) <= SMALL.starter_pack_size
        assert len({c.used for c in starter}) == len(starter)
        weekly = Counter(c.week_start for c in charges if c.seller_id == seller and c.source is ChargeSource.WEEKLY)
        for week_start, count in weekly.items():
            frozen = store.week_tiers[(seller, SMALL.week_of(week_start).key)]
            assert frozen.weekly_limit is None or count <= frozen.weekly_limit
        for _, _, _, holder in store.held_units():  # no unit outlives a charge: none leaked
            assert any(c.command_id == holder for c in store.charges.values())
