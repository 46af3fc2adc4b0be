"""imctl's reads: the read API of DESIGN §5 as tables and as its own JSON."""

import json

import pytest

from tests.harness import Suite, unique
from tests.integration.imctl.conftest import Imctl, refused
from tests.integration.inbox_projection.support import eventually, publish_profile

pytestmark = pytest.mark.integration


async def test_inbox_shows_rows_with_unread_counts_last_message_and_blocked_marks(imctl: Imctl, suite: Suite) -> None:
    seller, fan, blocker = unique("s"), unique("c"), unique("c")
    await publish_profile(suite, fan, followers=5000, category="Beauty", nickname="Fan")
    await imctl.json("send", seller, fan, "love your shop", "--as", "creator", "--wait")
    await imctl.json("send", seller, blocker, "hello", "--as", "creator", "--wait")
    await imctl.json("block", seller, blocker)

    async def page() -> dict:
        return await imctl.json("inbox", seller)

    found = await eventually(page, lambda p: len(p["items"]) == 2 and any(item["blocked"] for item in p["items"]))
    assert found["seller_id"] == seller and found["folder"] == "messages" and found["next_cursor"] is None
    assert found["counts"] == {**found["counts"], "messages": 2, "unread": 2}
    rows = {item["creator_id"]: item for item in found["items"]}
    assert rows[fan]["last_message"]["text"] == "love your shop" and rows[fan]["unread_count"] == 1
    assert rows[blocker]["blocked"] is True and rows[fan]["blocked"] is False

    table = await imctl("inbox", seller)
    assert table.exit_code == 0, table.output
    assert fan in table.stdout and "love your shop" in table.stdout and "Fan" in table.stdout
    blocked_line = next(line for line in table.stdout.splitlines() if blocker in line)
    assert "🚫" in blocked_line

    filtered = await imctl.json("inbox", seller, "--min-followers", "1000", "--category", "Beauty")
    assert [item["creator_id"] for item in filtered["items"]] == [fan]  # an unknown profile matches no filter (R16)

    first = await imctl.json("inbox", seller, "--limit", "1")
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = await imctl.json("inbox", seller, "--limit", "1", "--cursor", first["next_cursor"])
    assert {first["items"][0]["creator_id"], second["items"][0]["creator_id"]} == {fan, blocker}


async def test_inbox_refuses_bad_input(imctl: Imctl) -> None:
    assert "INVALID_REQUEST" in refused(await imctl("inbox", unique("s"), "--cursor", "not-a-cursor"))
    assert (await imctl("inbox", unique("s"), "--folder", "spam")).exit_code == 2
    assert (await imctl("inbox", unique("s"), "--limit", "0")).exit_code == 2
    assert (await imctl("inbox", unique("s"), "--min-sales-gmv", "lots")).exit_code == 2
    document = await imctl.json("inbox", "bad id", code=1)
    assert "422" in document["error"]


async def test_history_pages_back_through_a_conversation(imctl: Imctl) -> None:
    seller, creator = unique("s"), unique("c")
    for sender, text in (("creator", "one"), ("seller", "two"), ("creator", "three")):
        await imctl.json("send", seller, creator, text, "--as", sender, "--wait")
    newest = await imctl.json("history", seller, creator, "--limit", "2")
    assert [m["seq"] for m in newest["items"]] == [3, 2] and newest["next_before_seq"] == 2
    older = await imctl.json("history", seller, creator, "--before-seq", "2")
    assert [m["text"] for m in older["items"]] == ["one"]
    table = await imctl("history", seller, creator)
    assert table.exit_code == 0 and "three" in table.stdout and "creator" in table.stdout
    assert (await imctl.json("history", seller, unique("c")))["items"] == []
    assert "INVALID_REQUEST" in refused(await imctl("history", seller, creator, "--limit", "500"))
    assert (await imctl("history", seller, creator, "--before-seq", "0")).exit_code == 2


async def test_quota_and_outreach(imctl: Imctl) -> None:
    seller, creator = unique("s"), unique("c")
    document = await imctl.json("quota", seller)
    assert document["quota"]["tier"] == "T0" and document["quota"]["starter_pack_remaining"] == 1000
    assert "outreach" not in document
    both = await imctl.json("quota", seller, "--creator", creator)
    assert both["outreach"]["creator_id"] == creator and both["outreach"]["connected"] is False
    table = await imctl("quota", seller, "--creator", creator)
    assert table.exit_code == 0 and "starter_pack_remaining" in table.stdout and "can_send" in table.stdout


async def test_blocks_lists_both_directions(imctl: Imctl) -> None:
    seller, blocked, blocker = unique("s"), unique("c"), unique("c")
    await imctl.json("block", seller, blocked)
    await imctl.json("block-seller", seller, blocker)
    document = await imctl.json("blocks", seller)
    assert document == {"seller_id": seller, "blocked_creators": [blocked], "blocked_by_creators": [blocker]}
    table = await imctl("blocks", seller)
    assert table.exit_code == 0 and blocked in table.stdout and blocker in table.stdout


async def test_an_unreachable_service_is_one_line(imctl: Imctl) -> None:
    urls = json.dumps({"inbox-projection": "http://127.0.0.1:9/"})
    line = refused(await imctl("inbox", "s1", env={"IMCTL_URLS": urls}))
    assert "cannot reach inbox-projection at http://127.0.0.1:9" in line
    unreachable = await imctl("send", "s1", "c1", "hi", env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"})
    assert "Kafka" in refused(unreachable)
