"""Moderation through the real Kafka and database (issue 3): each command and
its event, each rejection reason in the pipeline, the read API, the 403 of every
service for a revoked seller, and sends racing a block."""

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from im_contracts import (
    BlockCreator,
    BlockSeller,
    ContractModel,
    CreatorBlocked,
    SetSellerAccess,
    SendMessage,
    UnblockCreator,
    UnblockSeller,
    new_event_id,
    utcnow,
)
from im_contracts.topics import DLQ, MODERATION_COMMANDS, MODERATION_EVENTS, SEND_DELIVERED, SEND_REJECTED, SEND_REQUESTED
from tests.harness import Suite, unique

pytestmark = pytest.mark.integration

BLOCKED_SENTENCE = "You cannot send messages to seller now as you are blocked by them."


def send(seller: str, creator: str, sender: str = "seller", text: str = "hello", **extra: Any) -> SendMessage:
    return SendMessage(
        command_id=unique("cmd"), occurred_at=utcnow(), seller_id=seller, creator_id=creator, sender=sender, text=text, **extra
    )


def pair_command(kind: type[ContractModel], seller: str, creator: str, **extra: Any) -> Any:
    return kind(**{"command_id": unique("mod"), "occurred_at": utcnow(), "seller_id": seller, "creator_id": creator, **extra})


def set_access(seller: str, status: str, **extra: Any) -> SetSellerAccess:
    return SetSellerAccess(**{"command_id": unique("mod"), "occurred_at": utcnow(), "seller_id": seller, "status": status, **extra})


async def command(suite: Suite, cmd: Any) -> Any:
    """Publish a moderation command that changes state and return its event."""
    await suite.publish(MODERATION_COMMANDS, cmd)
    (event,) = await suite.observer.wait_for(MODERATION_EVENTS, lambda m: m.command_id == cmd.command_id)
    return event


async def outcome(suite: Suite, message: SendMessage) -> Any:
    await suite.publish(SEND_REQUESTED, message)
    return await suite.observer.outcome_of(message.command_id)


async def connect(suite: Suite, seller: str, creator: str) -> None:
    """The creator writes first: the pair is connected, so quota never stands in
    the way of the seller's later sends (R5, R8, R9) and only moderation decides."""
    assert (await outcome(suite, send(seller, creator, sender="creator", text="hi, interested!"))).type == "MessageDelivered"


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    """Wait for a condition another service reaches by following events."""
    async def poll() -> None:
        while not await check():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


def raw_events(suite: Suite, predicate: Callable[[Any], bool]) -> list[bytes]:
    return [o.value for o in suite.observer.records[MODERATION_EVENTS] if o.message is not None and predicate(o.message)]


# --- commands and their events -------------------------------------------------------

SUBJECTS = {
    "seller blocks creator": (BlockCreator, UnblockCreator, "CreatorBlocked", "CreatorUnblocked"),
    "creator blocks seller": (BlockSeller, UnblockSeller, "SellerBlocked", "SellerUnblocked"),
}


@pytest.mark.parametrize("subject", list(SUBJECTS))
async def test_block_and_unblock_publish_one_event_per_real_change(suite: Suite, subject: str) -> None:
    block, unblock, blocked_type, unblocked_type = SUBJECTS[subject]
    seller, creator = unique("s"), unique("c")

    def of_pair(event: Any) -> bool:
        return (event.seller_id, getattr(event, "creator_id", None)) == (seller, creator)

    first = pair_command(block, seller, creator)
    event = await command(suite, first)
    assert (event.type, event.seller_id, event.creator_id, event.command_id) == (blocked_type, seller, creator, first.command_id)
    assert event.occurred_at == first.occurred_at

    await suite.publish(MODERATION_COMMANDS, pair_command(block, seller, creator))  # a repeat: nothing changes
    await suite.publish(MODERATION_COMMANDS, first)  # a redelivery: the stored event again
    undo = pair_command(unblock, seller, creator)
    await command(suite, undo)  # same key, same partition: everything before it is handled
    late = pair_command(block, seller, creator, occurred_at=undo.occurred_at - timedelta(seconds=5))
    await suite.publish(MODERATION_COMMANDS, late)  # older than the unblock: stale, changes nothing
    await suite.publish(MODERATION_COMMANDS, pair_command(unblock, seller, creator))  # a repeat
    again = pair_command(block, seller, creator)
    await command(suite, again)

    events = suite.observer.messages(MODERATION_EVENTS, of_pair)
    assert [(e.type, e.command_id) for e in events] == [
        (blocked_type, first.command_id),
        (blocked_type, first.command_id),
        (unblocked_type, undo.command_id),
        (blocked_type, again.command_id),
    ]
    first_bytes = raw_events(suite, lambda m: m.command_id == first.command_id)
    assert len(first_bytes) == 2 and first_bytes[0] == first_bytes[1]  # replayed, not recomputed


async def test_seller_access_changes_publish_one_event_per_real_change(suite: Suite) -> None:
    seller = unique("s")

    def of_seller(event: Any) -> bool:
        return event.type == "SellerAccessChanged" and event.seller_id == seller

    closed = set_access(seller, "shop_closed", reason="Shop closed by its owner")
    event = await command(suite, closed)
    assert (event.status, event.reason, event.command_id) == ("shop_closed", "Shop closed by its owner", closed.command_id)

    await suite.publish(MODERATION_COMMANDS, set_access(seller, "shop_closed"))  # a repeat
    await suite.publish(MODERATION_COMMANDS, closed)  # a redelivery
    deactivated = set_access(seller, "deactivated")
    await command(suite, deactivated)
    stale = set_access(seller, "active", occurred_at=deactivated.occurred_at - timedelta(seconds=5))
    await suite.publish(MODERATION_COMMANDS, stale)
    restored = set_access(seller, "active")
    await command(suite, restored)
    await suite.publish(MODERATION_COMMANDS, set_access(seller, "active"))  # a repeat
    await command(suite, sentinel := set_access(seller, "shop_closed"))

    events = suite.observer.messages(MODERATION_EVENTS, of_seller)
    assert [(e.status, e.command_id) for e in events] == [
        ("shop_closed", closed.command_id),
        ("shop_closed", closed.command_id),
        ("deactivated", deactivated.command_id),
        ("active", restored.command_id),
        ("shop_closed", sentinel.command_id),
    ]


async def test_blocks_and_access_are_readable(suite: Suite) -> None:
    seller, blocked, blocker, other = unique("s"), unique("c1"), unique("c2"), unique("c3")
    async with suite.http("moderation") as http:
        assert (await http.get(f"/v1/sellers/{seller}/blocks")).json() == {"blocked_creators": [], "blocked_by_creators": []}
        assert (await http.get(f"/v1/sellers/{seller}/access")).json() == {"seller_id": seller, "status": "active"}

        await command(suite, pair_command(BlockCreator, seller, blocked))
        await command(suite, pair_command(BlockCreator, seller, other))
        await command(suite, pair_command(BlockSeller, seller, blocker))
        assert (await http.get(f"/v1/sellers/{seller}/blocks")).json() == {
            "blocked_creators": sorted([blocked, other]),
            "blocked_by_creators": [blocker],
        }

        await command(suite, pair_command(UnblockCreator, seller, other))
        await command(suite, pair_command(UnblockSeller, seller, blocker))
        assert (await http.get(f"/v1/sellers/{seller}/blocks")).json() == {"blocked_creators": [blocked], "blocked_by_creators": []}

        await command(suite, set_access(seller, "deactivated"))
        access = await http.get(f"/v1/sellers/{seller}/access")
        assert (access.status_code, access.json()) == (200, {"seller_id": seller, "status": "deactivated"})
        refused = await http.get(f"/v1/sellers/{seller}/blocks")
        assert (refused.status_code, refused.json()["error"]) == (403, "SELLER_ACCESS_REVOKED")

        await command(suite, set_access(seller, "active"))
        assert (await http.get(f"/v1/sellers/{seller}/blocks")).status_code == 200
        assert (await http.get("/v1/sellers/bad id!/blocks")).status_code == 422


# --- screening in the pipeline --------------------------------------------------------


async def test_creator_blocked_by_seller_gets_the_exact_sentence_until_unblocked(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    await connect(suite, seller, creator)
    await command(suite, pair_command(BlockCreator, seller, creator))

    from_creator = await outcome(suite, send(seller, creator, sender="creator"))
    assert (from_creator.type, from_creator.stage, from_creator.reason) == ("MessageRejected", "moderation", "BLOCKED_BY_SELLER")
    assert from_creator.detail == BLOCKED_SENTENCE
    assert (from_creator.sender, from_creator.seller_id, from_creator.creator_id) == ("creator", seller, creator)

    from_seller = await outcome(suite, send(seller, creator))
    assert (from_seller.type, from_seller.reason) == ("MessageRejected", "BLOCKED_BY_SELLER")
    assert "Unblock" in from_seller.detail

    await command(suite, pair_command(UnblockCreator, seller, creator))
    assert (await outcome(suite, send(seller, creator, sender="creator"))).type == "MessageDelivered"
    assert (await outcome(suite, send(seller, creator))).type == "MessageDelivered"


async def test_a_block_another_instance_applied_is_in_force_from_its_event(suite: Suite) -> None:
    """Sends are screened from what moderation learned from im.moderation.events (the
    store here holds no block), once every event published before them is learned."""
    seller, creator = unique("s"), unique("c")
    await connect(suite, seller, creator)
    blocked = CreatorBlocked(event_id=new_event_id(), occurred_at=utcnow(), command_id=unique("mod"), seller_id=seller, creator_id=creator)
    await suite.publish(MODERATION_EVENTS, blocked)

    refused = await outcome(suite, send(seller, creator, sender="creator"))
    assert (refused.type, refused.reason) == ("MessageRejected", "BLOCKED_BY_SELLER")


async def test_creator_block_stops_the_seller_only_until_unblocked(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    await connect(suite, seller, creator)
    await command(suite, pair_command(BlockSeller, seller, creator))

    refused = await outcome(suite, send(seller, creator))
    assert (refused.type, refused.stage, refused.reason, refused.rule_id) == ("MessageRejected", "moderation", "BLOCKED_BY_CREATOR", None)
    assert (await outcome(suite, send(seller, creator, sender="creator"))).type == "MessageDelivered"  # R20: not a creator rule

    await command(suite, pair_command(UnblockSeller, seller, creator))
    assert (await outcome(suite, send(seller, creator))).type == "MessageDelivered"


async def test_revoked_seller_neither_sends_nor_receives_until_restored(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    await connect(suite, seller, creator)
    await command(suite, set_access(seller, "shop_closed"))

    for sender in ("seller", "creator"):
        refused = await outcome(suite, send(seller, creator, sender=sender))
        assert (refused.type, refused.stage, refused.reason, refused.sender) == ("MessageRejected", "moderation", "SELLER_ACCESS_REVOKED", sender)

    await command(suite, set_access(seller, "active"))
    assert (await outcome(suite, send(seller, creator))).type == "MessageDelivered"
    assert (await outcome(suite, send(seller, creator, sender="creator"))).type == "MessageDelivered"


async def test_access_is_judged_before_blocks(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    await command(suite, pair_command(BlockCreator, seller, creator))
    await command(suite, pair_command(BlockSeller, seller, creator))
    await command(suite, set_access(seller, "deactivated"))
    refused = await outcome(suite, send(seller, creator, text="pay me on venmo"))
    assert refused.reason == "SELLER_ACCESS_REVOKED"


@pytest.mark.parametrize(
    ("text", "rule_id"),
    [("Let's settle it via Western Union", "off-platform-payment"), ("Mail me: buyer.team@shop-example.com", "email-address")],
)
async def test_content_rules_reject_with_the_rule_id(suite: Suite, text: str, rule_id: str) -> None:
    seller, creator = unique("s"), unique("c")
    refused = await outcome(suite, send(seller, creator, sender="creator", text=text))
    assert (refused.type, refused.stage, refused.reason, refused.rule_id) == ("MessageRejected", "moderation", "CONTENT_REJECTED", rule_id)
    assert refused.detail


async def test_text_too_long_is_a_content_rejection(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    command_id = unique("cmd")
    body = json.loads(send(seller, creator, sender="creator").model_dump_json()) | {"command_id": command_id, "text": "x" * 2001}
    await suite.publish_raw(SEND_REQUESTED, json.dumps(body).encode(), key=f"{seller}:{creator}".encode())
    refused = await suite.observer.outcome_of(command_id)
    assert (refused.reason, refused.rule_id, refused.seller_id, refused.sender) == ("CONTENT_REJECTED", "text-length", seller, "creator")
    assert "2,001" in refused.detail


async def test_cards_are_screened_and_their_rejection_names_the_card(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    await command(suite, pair_command(BlockSeller, seller, creator))
    card = send(seller, creator, text="Product card: Blender 3000", kind="product_card", card_id=unique("card"))
    refused = await outcome(suite, card)
    assert (refused.reason, refused.kind, refused.card_id) == ("BLOCKED_BY_CREATOR", "product_card", card.card_id)

    sample_request = send(seller, creator, sender="creator", text="Sample request: WeChat me", kind="sample_request", card_id=unique("card"))
    refused = await outcome(suite, sample_request)
    assert (refused.reason, refused.rule_id, refused.kind, refused.card_id) == ("CONTENT_REJECTED", "off-platform-contact", "sample_request", sample_request.card_id)


async def test_bulk_fan_out_rejection_keeps_the_bulk_id(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    await command(suite, pair_command(BlockCreator, seller, creator))
    fanned = send(seller, creator, entry_point="bulk", bulk_id=unique("bulk"))
    refused = await outcome(suite, fanned)
    assert (refused.reason, refused.bulk_id) == ("BLOCKED_BY_SELLER", fanned.bulk_id)


async def test_schema_violation_is_invalid_command_and_dead_letter(suite: Suite) -> None:
    seller, command_id = unique("s"), unique("cmd")
    bad = {"type": "SendMessage", "command_id": command_id, "occurred_at": utcnow().isoformat(), "seller_id": seller, "creator_id": "c1", "sender": "nobody", "text": "x"}
    await suite.publish_raw(SEND_REQUESTED, json.dumps(bad).encode(), key=f"{seller}:c1".encode())
    refused = await suite.observer.outcome_of(command_id)
    assert (refused.reason, refused.stage, refused.seller_id, refused.sender) == ("INVALID_COMMAND", "moderation", seller, None)
    (letter,) = await suite.observer.wait_for(DLQ, lambda m: m.command_id == command_id)
    assert (letter.service, letter.topic) == ("moderation", SEND_REQUESTED)


# --- R13: every read endpoint refuses a revoked seller ----------------------------------


def seller_read_paths(suite: Suite, seller: str) -> dict[str, list[str]]:
    """Every GET path about a seller in every running service, with its ids filled in."""
    paths: dict[str, list[str]] = {}
    for name, runtime in suite.runtimes.items():
        for path, operations in runtime.http_app.openapi()["paths"].items():
            if "get" in operations and "{seller_id}" in path:
                filled = re.sub(r"\{[a-z_]+\}", lambda _: unique("x"), path.replace("{seller_id}", seller))
                paths.setdefault(name, []).append(filled)
    return paths


async def test_every_read_endpoint_refuses_a_revoked_seller(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    await connect(suite, seller, creator)
    paths = seller_read_paths(suite, seller)
    access_path = f"/v1/sellers/{seller}/access"
    assert any(p.startswith(f"/v1/conversations/{seller}/") for p in paths["messaging"])
    assert f"/v1/sellers/{seller}/blocks" in paths["moderation"] and access_path in paths["moderation"]

    async def answers(service: str, path: str, status: int) -> bool:
        async with suite.http(service, suite.token("seller", seller)) as http:  # R13 comes after authentication
            response = await http.get(path)
        return response.status_code == status and (status != 403 or response.json()["error"] == "SELLER_ACCESS_REVOKED")

    async def all_answer(status: int) -> bool:
        checks = [answers(s, p, status) for s, ps in paths.items() for p in ps if p != access_path]
        return all(await asyncio.gather(*checks))

    await command(suite, set_access(seller, "shop_closed"))
    await eventually(lambda: all_answer(403))  # each service follows SellerAccessChanged on its own
    async with suite.http("moderation") as http:
        assert (await http.get(access_path)).json() == {"seller_id": seller, "status": "shop_closed"}

    messages = f"/v1/conversations/{seller}/{creator}/messages"
    await command(suite, set_access(seller, "active"))
    await eventually(lambda: answers("messaging", messages, 200))
    async with suite.http("messaging") as http:
        assert len((await http.get(messages)).json()["items"]) == 1


# --- one outcome per send, whatever races it ----------------------------------------------


async def test_redelivery_after_a_block_replays_the_first_outcome(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    original = send(seller, creator, sender="creator")
    delivered = await outcome(suite, original)
    assert delivered.type == "MessageDelivered"
    await command(suite, pair_command(BlockCreator, seller, creator))

    await suite.publish(SEND_REQUESTED, original)  # redelivered after the block
    replays = await suite.observer.wait_for(SEND_DELIVERED, lambda m: m.command_id == original.command_id, count=2)
    assert {m.message_id for m in replays} == {delivered.message_id}
    later = await outcome(suite, send(seller, creator, sender="creator"))
    assert later.reason == "BLOCKED_BY_SELLER"  # the block is in force for new sends
    assert not suite.observer.messages(SEND_REJECTED, lambda m: m.command_id == original.command_id)


async def test_a_burst_racing_a_block_ends_each_send_exactly_once(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    before = [send(seller, creator, sender="creator", text=f"message {i}") for i in range(30)]
    block = pair_command(BlockCreator, seller, creator)

    async def publish_racing() -> None:
        await asyncio.gather(*(suite.publish(SEND_REQUESTED, m) for m in before[:15]))
        await asyncio.gather(suite.publish(MODERATION_COMMANDS, block), *(suite.publish(SEND_REQUESTED, m) for m in before[15:]))

    await publish_racing()
    await suite.observer.wait_for(MODERATION_EVENTS, lambda m: m.command_id == block.command_id)
    after = [send(seller, creator, sender="creator", text=f"late {i}") for i in range(30)]
    await asyncio.gather(*(suite.publish(SEND_REQUESTED, m) for m in after))
    burst = before + after
    ids = {m.command_id for m in burst}

    first = {m.command_id: await suite.observer.outcome_of(m.command_id) for m in burst}
    for m in after:
        assert first[m.command_id].reason == "BLOCKED_BY_SELLER"  # judged after the block was in force
    for result in first.values():
        assert result.type == "MessageDelivered" or (result.reason, result.detail) == ("BLOCKED_BY_SELLER", BLOCKED_SENTENCE)

    # Redeliver the whole burst: every send replays its first outcome, never the other one.
    await asyncio.gather(*(suite.publish(SEND_REQUESTED, m) for m in burst))
    delivered_ids = {c for c, r in first.items() if r.type == "MessageDelivered"}
    rejected_ids = ids - delivered_ids
    await suite.observer.wait_for(SEND_DELIVERED, lambda m: m.command_id in delivered_ids, count=2 * len(delivered_ids))
    await suite.observer.wait_for(SEND_REJECTED, lambda m: m.command_id in rejected_ids, count=2 * len(rejected_ids))

    delivered = suite.observer.messages(SEND_DELIVERED, lambda m: m.command_id in ids)
    rejected = suite.observer.messages(SEND_REJECTED, lambda m: m.command_id in ids)
    assert {m.command_id for m in delivered}.isdisjoint({m.command_id for m in rejected})
    assert {m.command_id for m in delivered} | {m.command_id for m in rejected} == ids
    for command_id in delivered_ids:
        assert len({m.message_id for m in delivered if m.command_id == command_id}) == 1
    assert sorted({m.seq for m in delivered}) == list(range(1, len(delivered_ids) + 1))  # no gaps (R1)
