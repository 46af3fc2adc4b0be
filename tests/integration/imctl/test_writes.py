"""imctl's commands: sends and bulk sends with --wait, moderation commands
answered by their events, inbox commands; bad input refused in one line."""

import json

import pytest

from im_contracts import BLOCKED_BY_SELLER_CREATOR_DETAIL
from tests.harness import Suite, unique
from tests.integration.imctl.conftest import Imctl, refused
from tests.integration.inbox_projection.support import eventually

pytestmark = pytest.mark.integration


async def test_send_waits_for_the_delivery(imctl: Imctl) -> None:
    seller, creator = unique("s"), unique("c")
    result = await imctl("send", seller, creator, "hello", "--as", "creator", "--wait")
    assert result.exit_code == 0, result.output
    assert "delivered" in result.stdout and "seq 1" in result.stdout

    document = await imctl.json("send", seller, creator, "hi back", "--wait")
    assert document["outcome"] == "delivered"
    assert document["published"]["topic"] == "im.send.requested"
    assert document["event"]["type"] == "MessageDelivered"
    assert document["event"]["command_id"] == document["command"]["command_id"]
    assert document["event"]["seq"] == 2 and document["event"]["sender"] == "seller"


async def test_a_rejected_send_exits_1_with_reason_and_detail(imctl: Imctl) -> None:
    seller, creator = unique("s"), unique("c")
    blocked = await imctl.json("block", seller, creator)
    assert blocked["event"]["type"] == "CreatorBlocked"

    document = await imctl.json("send", seller, creator, "let me in", "--as", "creator", "--wait", code=1)
    assert document["outcome"] == "rejected"
    assert document["event"]["reason"] == "BLOCKED_BY_SELLER"
    assert document["event"]["detail"] == BLOCKED_BY_SELLER_CREATOR_DETAIL
    result = await imctl("send", seller, creator, "again", "--as", "creator", "--wait")
    assert result.exit_code == 1
    assert "BLOCKED_BY_SELLER" in result.stdout and BLOCKED_BY_SELLER_CREATOR_DETAIL in result.stdout


async def test_send_without_wait_publishes_and_returns(imctl: Imctl, suite: Suite) -> None:
    document = await imctl.json("send", unique("s"), unique("c"), "fire and forget", "--as", "creator", "--entry-point", "creator_profile")
    assert set(document) == {"command", "published"}
    assert document["command"]["entry_point"] == "creator_profile"
    outcome = await suite.observer.outcome_of(document["command"]["command_id"])
    assert outcome.seq == 1


async def test_send_refuses_bad_input_in_one_line(imctl: Imctl) -> None:
    assert "seller_id" in refused(await imctl("send", "not an id", "c1", "hi"), code=2)
    assert "text" in refused(await imctl("send", "s1", "c1", "   "), code=2)
    assert "text" in refused(await imctl("send", "s1", "c1", "x" * 2001), code=2)
    document = await imctl.json("send", "bad id", "c1", "hi", code=2)
    assert "seller_id" in document["error"]
    usage = await imctl("send", "s1", "c1", "hi", "--as", "robot")
    assert usage.exit_code == 2 and "Traceback" not in usage.output


async def test_bulk_waits_for_every_outcome_and_the_summary(imctl: Imctl, tmp_path) -> None:
    seller, connected, unknown = unique("s"), unique("c"), [unique("c"), unique("c")]
    await imctl.json("send", seller, connected, "hi seller", "--as", "creator", "--wait")  # connected: never charged (R5)

    result = await imctl("bulk", seller, connected, *unknown, "--text", "new collection", "--wait")
    assert result.exit_code == 0, result.output
    assert "CREATOR_NOT_ELIGIBLE" in result.stdout and "delivered" in result.stdout  # unknown profiles are above any cap (R8)
    assert "3/3" in result.stderr  # the progress bar, on stderr

    listed = tmp_path / "creators.txt"
    listed.write_text(f"# creators to reach\n{connected}\n\n{unknown[0]}\n")
    document = await imctl.json("bulk", seller, "--creators-file", str(listed), "--text", "again", "--wait")
    assert document["completed"]["total"] == 2
    assert document["completed"]["delivered"] == 1
    assert document["completed"]["rejected_by_reason"] == {"CREATOR_NOT_ELIGIBLE": 1}
    assert document["outcomes"] == {"delivered": 1, "rejected": 1}
    assert document["command"]["creator_ids"] == [connected, unknown[0]]


async def test_bulk_refuses_bad_input(imctl: Imctl, tmp_path) -> None:
    assert "creator_ids" in refused(await imctl("bulk", "s1", "c1", "c1", "--text", "hi"), code=2)  # distinct (R19)
    assert "no creators" in refused(await imctl("bulk", "s1", "--text", "hi"), code=2)
    assert "cannot read" in refused(await imctl("bulk", "s1", "--creators-file", str(tmp_path / "none"), "--text", "hi"), code=2)
    assert (await imctl("bulk", "s1", "c1")).exit_code == 2  # --text is required


async def test_moderation_commands_wait_for_their_events(imctl: Imctl) -> None:
    seller, creator = unique("s"), unique("c")
    steps = [
        (("block", seller, creator), "CreatorBlocked"),
        (("unblock", seller, creator), "CreatorUnblocked"),
        (("block-seller", seller, creator), "SellerBlocked"),
        (("unblock-seller", seller, creator), "SellerUnblocked"),
    ]
    for args, event_type in steps:
        document = await imctl.json(*args)
        assert document["event"]["type"] == event_type
        assert document["event"]["command_id"] == document["command"]["command_id"]
        assert (document["event"]["seller_id"], document["event"]["creator_id"]) == (seller, creator)

    # Already unblocked: moderation announces no change, so imctl does not wait for one.
    document = await imctl.json("unblock", seller, creator)
    assert document["unchanged"] is True and "event" not in document

    result = await imctl("block", seller, creator)
    assert result.exit_code == 0 and "CreatorBlocked" in result.stdout


async def test_access_revokes_and_restores_a_seller(imctl: Imctl) -> None:
    seller, creator = unique("s"), unique("c")
    await imctl.json("send", seller, creator, "hello", "--as", "creator", "--wait")
    closed = await imctl.json("access", seller, "shop_closed", "--reason", "audit")
    assert closed["event"] == {**closed["event"], "type": "SellerAccessChanged", "status": "shop_closed", "reason": "audit"}

    async def inbox_refusal() -> str:
        return (await imctl("inbox", seller)).stderr

    assert "SELLER_ACCESS_REVOKED" in await eventually(inbox_refusal, lambda text: "SELLER_ACCESS_REVOKED" in text)
    rejected = await imctl.json("send", seller, creator, "anyone?", "--wait", code=1)
    assert rejected["event"]["reason"] == "SELLER_ACCESS_REVOKED"

    assert (await imctl.json("access", seller, "active"))["event"]["status"] == "active"
    assert (await imctl("access", seller, "suspended")).exit_code == 2


async def test_inbox_commands_reach_the_inbox(imctl: Imctl) -> None:
    seller, creator = unique("s"), unique("c")
    await imctl.json("send", seller, creator, "hello", "--as", "creator", "--wait")

    async def folder(name: str) -> list[str]:
        return [item["creator_id"] for item in (await imctl.json("inbox", seller, "--folder", name))["items"]]

    async def unread() -> int | None:
        items = (await imctl.json("inbox", seller))["items"]
        return items[0]["unread_count"] if items else None

    await eventually(unread, lambda count: count == 1)  # the projection applies the delivery asynchronously
    star = await imctl.json("star", seller, creator)
    assert star["command"]["type"] == "StarConversation" and star["published"]["topic"] == "im.inbox.commands"
    await eventually(lambda: folder("starred"), lambda found: found == [creator])
    await imctl.json("unstar", seller, creator)
    await eventually(lambda: folder("starred"), lambda found: found == [])
    await imctl.json("archive", seller, creator)
    await eventually(lambda: folder("archived"), lambda found: found == [creator])
    await imctl.json("unarchive", seller, creator)
    await eventually(lambda: folder("archived"), lambda found: found == [])
    read = await imctl("read", seller, creator, "--up-to-seq", "1")
    assert read.exit_code == 0 and "MarkConversationRead" in read.stdout
    await eventually(unread, lambda count: count == 0)
    assert "up_to_seq" in refused(await imctl("read", seller, creator, "--up-to-seq", "0"), code=2)


async def test_waiting_gives_up_after_the_timeout(imctl: Imctl) -> None:
    # A seller send to an unknown creator is rejected quickly; a 0.001 s wait cannot see it.
    line = refused(await imctl("send", unique("s"), unique("c"), "hi", "--wait", "--timeout", "0.001"))
    assert "within 0.001s" in line
    document = json.loads((await imctl("send", unique("s"), unique("c"), "hi", "--wait", "--timeout", "0.001", "--json")).stdout)
    assert "within" in document["error"]
