"""The send pipeline under a realistic mix, and the state it needs first.

Sellers are tier T3 (30-day GMV above 50,000 reported on im.directory.events),
every creator has a profile below every follower cap. Traffic, per message:

- 40 % a creator writes in a conversation it opened (never charged, R5);
- 40 % the seller replies in such a conversation (connected, reply cap lifted);
- 20 % seller outreach to a creator it never wrote to: one message per pair,
  so each is charged once (R3, R4) and the reply cap (R9) never bites.

Every id carries the run id, so runs never meet each other's state."""

import random
from collections.abc import Iterator
from dataclasses import dataclass

from im_contracts import (
    BulkSendMessage,
    ContractModel,
    CreatorProfileUpdated,
    EntryPoint,
    SellerGmvUpdated,
    SendMessage,
    kafka_key,
    new_event_id,
    utcnow,
)
from bench.loadgen import Message

T3_GMV = "75000.00"
CATEGORIES = ("beauty", "fashion", "home", "electronics", "food", "sports", "toys", "pets")
LINES = (
    "Hi! Love your products, could we talk about a collaboration?",
    "Thanks for reaching out. What commission do you offer on the new line?",
    "Sure, I can send you a sample this week. Which size do you need?",
    "Our summer campaign starts Monday; the rate is 18% on every sale through your showcase.",
    "Got the package today, the quality is great. I will film on Thursday.",
    "Could you share your audience breakdown and last month's sales?",
)


@dataclass(frozen=True)
class MixWeights:
    creator: float = 0.4
    reply: float = 0.4
    outreach: float = 0.2


class PipelineMix:
    def __init__(
        self, run_id: str, *, sellers: int = 40, pairs: int = 400, outreach_creators: int = 1000,
        bulk_creators: int = 500, seed: int = 7,
    ) -> None:
        self.run_id = run_id
        self.weights = MixWeights()
        self._random = random.Random(seed)
        self.sellers = [f"bs{run_id}-{n}" for n in range(sellers)]
        self.pairs = [(self.sellers[n % sellers], f"bc{run_id}-{n}") for n in range(pairs)]
        self.outreach_creators = [f"bo{run_id}-{n}" for n in range(outreach_creators)]
        # Bulk goes from its own seller to creators nobody wrote to.
        self.bulk_seller = f"bk{run_id}"
        self.bulk_creators = [f"bk{run_id}-{n}" for n in range(bulk_creators)]
        self._fresh_pairs = self._fresh_pair_stream()

    # --- state set up before measuring ---------------------------------------------

    def directory_events(self) -> list[ContractModel]:
        now = utcnow()
        events: list[ContractModel] = [
            SellerGmvUpdated(event_id=new_event_id(), occurred_at=now, seller_id=s, gmv_30d=T3_GMV)
            for s in [*self.sellers, self.bulk_seller]
        ]
        creators = [c for _, c in self.pairs] + self.outreach_creators + self.bulk_creators
        for n, creator in enumerate(creators):
            events.append(
                CreatorProfileUpdated(
                    event_id=new_event_id(), occurred_at=now, creator_id=creator, nickname=f"creator {n}",
                    followers=1_000 + (n * 37) % 15_000, main_category=CATEGORIES[n % len(CATEGORIES)],
                    sales_gmv_30d=f"{(n * 91) % 20_000}.00",
                )
            )
        return events

    def opening_messages(self) -> list[SendMessage]:
        """Each pair's creator writes first, which connects it and lifts the reply cap."""
        return [self._send(seller, creator, "creator", EntryPoint.API, f"open-{n}") for n, (seller, creator) in enumerate(self.pairs)]

    # --- the measured traffic -----------------------------------------------------

    def message(self, n: int) -> Message:
        send = self.next_send(n)
        return send.command_id, kafka_key(send), send.model_dump_json().encode()

    def next_send(self, n: int) -> SendMessage:
        draw = self._random.random()
        if draw < self.weights.creator:
            seller, creator = self._random.choice(self.pairs)
            return self._send(seller, creator, "creator", EntryPoint.API, f"m{n}")
        if draw < self.weights.creator + self.weights.reply:
            seller, creator = self._random.choice(self.pairs)
            return self._send(seller, creator, "seller", EntryPoint.CREATOR_MESSAGES, f"m{n}")
        seller, creator = next(self._fresh_pairs)
        entry = EntryPoint.FIND_CREATORS if n % 2 else EntryPoint.CREATOR_PROFILE
        return self._send(seller, creator, "seller", entry, f"m{n}")

    def bulk(self) -> BulkSendMessage:
        return BulkSendMessage(
            command_id=f"bulk-{self.run_id}", occurred_at=utcnow(), seller_id=self.bulk_seller,
            creator_ids=tuple(self.bulk_creators), text=LINES[3],
        )

    def _send(self, seller: str, creator: str, sender: str, entry: EntryPoint, tag: str) -> SendMessage:
        return SendMessage(
            command_id=f"b{self.run_id}-{tag}", occurred_at=utcnow(), seller_id=seller, creator_id=creator,
            sender=sender, text=self._random.choice(LINES), entry_point=entry,
        )

    def _fresh_pair_stream(self) -> Iterator[tuple[str, str]]:
        """(seller, creator) pairs that never met: creator by creator, every seller in turn."""
        for creator in self.outreach_creators:
            for seller in self.sellers:
                yield seller, creator
        raise RuntimeError("ran out of fresh outreach pairs: raise outreach_creators")
