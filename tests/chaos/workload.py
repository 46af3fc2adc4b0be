"""What a fault round sends: a realistic mix of conversations, the directory
facts that make every valid send admissible, and poison of every kind.

Conversations (one per fresh creator; about four per seller):

- *outreach*: the seller opens with one to three messages (under the reply cap
  of five), the creator answers, then both sides talk;
- *inbound*: the creator opens, then both sides talk.

Every seller is made T3 (``SellerGmvUpdated``: unlimited weekly quota, no
follower cap) and every creator gets a ``CreatorProfileUpdated``, so quota
never refuses. A few texts after the creator's first message carry a banned
term: moderation rejects them (``CONTENT_REJECTED``). Every send therefore has
a known expected outcome.
"""

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from im_contracts import (
    ContractModel,
    CreatorProfileUpdated,
    SellerGmvUpdated,
    SendMessage,
    conversation_id,
    kafka_key,
    new_event_id,
)
from im_contracts.topics import (
    DIRECTORY_EVENTS,
    MODERATION_COMMANDS,
    SEND_ADMITTED,
    SEND_REQUESTED,
    SEND_SCREENED,
)

DELIVERED = "delivered"
NO_DELIVERY = "no-delivery"  # never delivered; at most one (identical) rejection
T3_GMV = Decimal("250000.00")
BANNED = ("let's talk on whatsapp", "pay me via zelle", "add me on telegram")
CATEGORIES = ("beauty", "fashion", "home", "fitness", "food", "tech")
OPENERS = (
    "Hi! Love your content, would you like to try our new {product}?",
    "Hello from our shop: we think our {product} fits your audience.",
    "Hey, we'd love to send you a free {product} sample.",
)
LINES = (
    "Sounds great, what commission do you offer?",
    "We offer 15% on the {product}, plus a free sample.",
    "Can you ship to Austin?",
    "Yes, shipping takes 3 days.",
    "I'll post a video this weekend.",
    "Thanks! Here is the product link in the showcase.",
    "Could you send the {product} in blue?",
    "Sure, the blue one is in stock.",
    "What's the price after the discount?",
    "It's $19.99 with the creator code.",
)
PRODUCTS = ("serum", "lip tint", "yoga mat", "air fryer", "phone stand", "hoodie")


def rejected(reason: str) -> str:
    return f"rejected:{reason}"


@dataclass
class Planned:
    """One SendMessage and the outcome it must end in."""

    send: SendMessage
    expect: str  # DELIVERED | rejected(REASON) | NO_DELIVERY

    @property
    def command_id(self) -> str:
        return self.send.command_id


@dataclass
class Workload:
    tag: str
    sellers: list[str]
    directory: list[ContractModel]
    conversations: dict[str, list[Planned]]

    @property
    def sends(self) -> list[Planned]:
        return [p for script in self.conversations.values() for p in script]


def plan_workload(sends: int, conversations: int, *, seed: int | None = None, tag: str | None = None) -> Workload:
    """``sends`` messages spread over ``conversations`` fresh conversations."""
    rng = random.Random(seed)
    tag = tag or uuid.uuid4().hex[:6]
    conversations = max(1, min(conversations, sends))
    sellers = [f"chs-{tag}-{i}" for i in range(max(1, conversations // 4))]
    now = datetime.now(timezone.utc)
    directory: list[ContractModel] = [
        SellerGmvUpdated(event_id=new_event_id(), occurred_at=now, seller_id=seller, gmv_30d=T3_GMV) for seller in sellers
    ]
    # How many messages each conversation gets: at least one, the rest at random.
    sizes = [1] * conversations
    for _ in range(sends - conversations):
        sizes[rng.randrange(conversations)] += 1

    scripts: dict[str, list[Planned]] = {}
    for i, size in enumerate(sizes):
        seller, creator = sellers[i % len(sellers)], f"chc-{tag}-{i}"
        directory.append(
            CreatorProfileUpdated(
                event_id=new_event_id(), occurred_at=now, creator_id=creator, nickname=f"creator {i}",
                # Some above T1's 20,000 cap: only the T3 sellers may reach them.
                followers=rng.choice((800, 5_000, 18_000, 60_000, 450_000)),
                main_category=rng.choice(CATEGORIES),
                sales_gmv_30d=Decimal(rng.randrange(0, 50_000)),
            )
        )
        scripts[conversation_id(seller, creator)] = conversation_script(rng, seller, creator, size, tag, now)
    return Workload(tag=tag, sellers=sellers, directory=directory, conversations=scripts)


def conversation_script(rng: random.Random, seller: str, creator: str, size: int, tag: str, start: datetime) -> list[Planned]:
    product = rng.choice(PRODUCTS)
    outreach = rng.random() < 0.5
    openers = rng.randint(1, 3)  # seller messages before the creator answers (the reply cap is five)
    script: list[Planned] = []
    creator_spoke = False
    for n in range(size):
        if outreach and not creator_spoke:
            sender = "seller" if n < openers else "creator"
        elif not creator_spoke:
            sender = "creator"
        else:
            sender = rng.choice(("seller", "creator"))
        if n == 0:
            text = rng.choice(OPENERS).format(product=product) if sender == "seller" else f"Hi, I love your {product}!"
        else:
            text = rng.choice(LINES).format(product=product)
        expect = DELIVERED
        # Banned terms only once the creator has spoken: a refused creator
        # message must not leave the seller under the reply cap.
        if creator_spoke and rng.random() < 0.05:
            text, expect = f"{text} {rng.choice(BANNED)}", rejected("CONTENT_REJECTED")
        entry_point = (
            rng.choice(("find_creators", "creator_profile", "api"))
            if sender == "seller" and not creator_spoke
            else "creator_messages"
        )
        send = SendMessage(
            command_id=f"chaos-{tag}-{uuid.uuid4().hex[:12]}",
            occurred_at=start + timedelta(milliseconds=n),
            seller_id=seller,
            creator_id=creator,
            sender=sender,
            text=text,
            entry_point=entry_point,
        )
        script.append(Planned(send, expect))
        creator_spoke = creator_spoke or (sender == "creator" and expect == DELIVERED)
    return script


# --- poison -------------------------------------------------------------------------

# Which services dead-letter a record of each topic (README: the services table).
LETTERED_BY = {
    SEND_REQUESTED: ("moderation",),
    SEND_SCREENED: ("quota",),
    SEND_ADMITTED: ("messaging",),
    DIRECTORY_EVENTS: ("quota", "inbox-projection"),
    MODERATION_COMMANDS: ("moderation",),
}
ONE_MIB = 1024 * 1024


@dataclass
class Poison:
    name: str
    topic: str
    key: bytes | None
    value: bytes
    command: Planned | None = None  # the outcome a readable command_id must get
    services: tuple[str, ...] = ()
    partition: int = -1
    offset: int = -1

    def __post_init__(self) -> None:
        self.services = self.services or LETTERED_BY[self.topic]


@dataclass
class PoisonSet:
    records: list[Poison] = field(default_factory=list)


def plan_poison(workload: Workload, tag: str | None = None) -> PoisonSet:
    """Poison of every kind, keyed (where it has a key) like busy conversations
    of the workload, so a stuck partition would show as missing outcomes."""
    tag = tag or workload.tag
    keys = [c.encode() for c in list(workload.conversations)[:8]] or [b"chaos"]
    seller = workload.sellers[0]
    now = datetime.now(timezone.utc).isoformat()

    def marker(name: str) -> str:
        return f"poison-{tag}-{name}-{uuid.uuid4().hex[:8]}"

    def body(**fields: object) -> bytes:
        return json.dumps(fields).encode()

    def send_body(name: str, **changes: object) -> tuple[str, bytes]:
        command_id = marker(name)
        fields: dict[str, object] = {
            "type": "SendMessage", "schema_version": 1, "command_id": command_id, "occurred_at": now,
            "seller_id": seller, "creator_id": f"chc-{tag}-poison", "sender": "seller", "text": "hello",
        }
        fields.update(changes)
        return command_id, json.dumps({k: v for k, v in fields.items() if v is not None}).encode()

    def expecting(command_id: str, expect: str) -> Planned:
        placeholder = SendMessage(command_id=command_id, occurred_at=datetime.now(timezone.utc), seller_id=seller,
                                  creator_id=f"chc-{tag}-poison", sender="seller", text="(poison)")
        return Planned(placeholder, expect)

    invalid = rejected("INVALID_COMMAND")
    records = [
        Poison("not-json", SEND_REQUESTED, keys[0], f"{{not json {marker('nj')}".encode()),
        Poison("not-utf8", SEND_REQUESTED, keys[1 % len(keys)], b"\xff\xfe\x00" + marker("nu").encode()),
        Poison("json-array", SEND_REQUESTED, keys[2 % len(keys)], json.dumps([marker("arr"), 1, 2]).encode()),
        Poison("json-string", SEND_REQUESTED, keys[3 % len(keys)], json.dumps(marker("str")).encode()),
        Poison("json-number", SEND_REQUESTED, keys[0], b"42"),
        Poison("json-null", SEND_REQUESTED, keys[1 % len(keys)], b"null"),
        Poison("unknown-type", SEND_REQUESTED, keys[2 % len(keys)], body(type="SendSticker", schema_version=1, marker=marker("ut"))),
        Poison("no-key", SEND_REQUESTED, None, f"no key, not json {marker('nk')}".encode()),
        Poison("no-key-object", SEND_REQUESTED, None, body(type="SendMessage", marker=marker("nko"))),
    ]
    # Schema violations whose command_id is readable: one INVALID_COMMAND rejection each (I3).
    for name, changes in (
        ("missing-text", {"text": None}),
        ("bad-seller-id", {"seller_id": "bad id!"}),
        ("bad-sender", {"sender": "robot"}),
        ("card-without-card-id", {"kind": "product_card"}),
        ("bad-occurred-at", {"occurred_at": "yesterday"}),
    ):
        command_id, value = send_body(name, **changes)
        records.append(Poison(f"schema:{name}", SEND_REQUESTED, keys[len(records) % len(keys)], value, expecting(command_id, invalid)))
    # A readable command_id under an unknown type: never delivered (it is refused as invalid).
    command_id, value = send_body("unknown-type-with-id", type="SendSticker")
    records.append(Poison("unknown-type-with-command-id", SEND_REQUESTED, keys[0], value, expecting(command_id, NO_DELIVERY)))
    # Schema violations with no readable command_id: dead letter only.
    _, value = send_body("no-command-id", command_id=None)
    records.append(Poison("schema:no-command-id", SEND_REQUESTED, keys[1 % len(keys)], value))
    _, value = send_body("numeric-command-id", command_id=12345)
    records.append(Poison("schema:numeric-command-id", SEND_REQUESTED, keys[2 % len(keys)], value))
    # Text over 2,000 characters is the sender's content problem (R14): rejected, and dead-lettered.
    command_id, value = send_body("long-text", text="x" * 2_500)
    records.append(Poison("text-too-long", SEND_REQUESTED, keys[3 % len(keys)], value, expecting(command_id, rejected("CONTENT_REJECTED"))))
    # 1 MiB: dead-lettered unread, so never delivered.
    command_id, value = send_body("one-mib", text="y" * ONE_MIB)
    records.append(Poison("one-mib", SEND_REQUESTED, keys[0], value, expecting(command_id, NO_DELIVERY)))
    # The internal hops and the upstream topics.
    records += [
        Poison("screened-not-json", SEND_SCREENED, keys[1 % len(keys)], f"garbage {marker('sc')}".encode()),
        Poison("admitted-not-json", SEND_ADMITTED, keys[2 % len(keys)], f"garbage {marker('ad')}".encode()),
        Poison("admitted-unknown-type", SEND_ADMITTED, keys[3 % len(keys)], body(type="SendTeleported", marker=marker("adt"))),
        Poison("directory-not-json", DIRECTORY_EVENTS, seller.encode(), f"garbage {marker('dir')}".encode()),
        Poison("directory-unknown-type", DIRECTORY_EVENTS, seller.encode(), body(type="SellerRenamed", event_id=marker("dut"), occurred_at=now, seller_id=seller)),
        Poison("directory-bad-gmv", DIRECTORY_EVENTS, seller.encode(), body(type="SellerGmvUpdated", event_id=marker("dgm"), occurred_at=now, seller_id=seller, gmv_30d="lots")),
        Poison("moderation-not-json", MODERATION_COMMANDS, seller.encode(), f"garbage {marker('mod')}".encode()),
    ]

    # A well-formed SendMessage without a key: the contract keys every message
    # (DESIGN §3), so it is refused as invalid and dead-lettered like other poison.
    command_id, value = send_body("valid-body-no-key")
    records.append(Poison("send-without-key", SEND_REQUESTED, None, value, expecting(command_id, invalid)))
    return PoisonSet(records=records)


def encoded(planned: Planned) -> tuple[bytes, bytes]:
    """(key, value) of a planned send, as upstream publishes it."""
    return kafka_key(planned.send), planned.send.model_dump_json().encode()
