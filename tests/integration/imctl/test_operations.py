"""imctl's operations: dead letters (list, show, replay), lag, the inbox
rebuild and the topics, against the real broker and database."""

import pytest

from im_contracts import DeadLetter
from im_contracts.topics import ALL_TOPICS, DLQ, SEND_REQUESTED
from tests.harness import Suite, unique
from tests.integration.imctl.conftest import Imctl, refused
from tests.integration.inbox_projection.support import eventually

pytestmark = pytest.mark.integration


async def dead_letter_of(suite: Suite, key: bytes) -> DeadLetter:
    found = await suite.observer.wait_for(DLQ, lambda letter: letter.key == key.decode() and letter.service == "moderation")
    return found[0]


async def test_dlq_list_show_and_replay(imctl: Imctl, suite: Suite) -> None:
    key = f"{unique('s')}:{unique('c')}".encode()
    await suite.publish_raw(SEND_REQUESTED, b"garbage, not JSON", key=key)
    letter = await dead_letter_of(suite, key)

    listed = await imctl.json("dlq", "list", "--since", "5m", "--topic", SEND_REQUESTED, "--service", "moderation", "--limit", "500")
    mine = [item for item in listed["items"] if item["key"] == key.decode()]
    # At-least-once: a redelivered poison record may be dead-lettered more than once, always as the same record.
    assert {(item["topic"], item["partition"], item["offset"]) for item in mine} == {(SEND_REQUESTED, letter.partition, letter.offset)}, mine
    assert letter.event_id in {item["event_id"] for item in mine}
    assert all(item["payload"] == "garbage, not JSON" and "not JSON" in item["error"] for item in mine)
    assert all(item["topic"] == SEND_REQUESTED and item["service"] == "moderation" for item in listed["items"])
    ident = mine[0]["id"]

    table = await imctl("dlq", "list", "--since", "5m", "--limit", "500")
    assert table.exit_code == 0 and ident in table.stdout and "moderation" in table.stdout

    shown = await imctl.json("dlq", "show", ident)
    assert shown["items"][0]["payload"] == "garbage, not JSON" and shown["items"][0]["payload_decoded"] is None
    assert shown["items"][0]["topic"] == SEND_REQUESTED and shown["items"][0]["key"] == key.decode()
    assert "garbage, not JSON" in (await imctl("dlq", "show", ident)).stdout

    plan = await imctl.json("dlq", "replay", *[item["id"] for item in mine], ident, "--dry-run")
    assert plan == {"dry_run": True, "plan": [{"id": ident, "topic": SEND_REQUESTED, "key": key.decode()}]}  # once per record

    declined = await imctl("dlq", "replay", ident, input="n\n")
    assert declined.exit_code == 1 and "not confirmed" in declined.stderr

    replayed = await imctl.json("dlq", "replay", ident, "--yes")
    assert [item["topic"] for item in replayed["republished"]] == [SEND_REQUESTED]
    # The same bytes under the same key, read again by moderation: a second dead letter of the new record.
    new_offset = replayed["republished"][0]["offset"]
    again = await suite.observer.wait_for(DLQ, lambda l: l.key == key.decode() and l.service == "moderation" and l.offset == new_offset)
    assert again[0].payload == "garbage, not JSON" and again[0].topic == SEND_REQUESTED


async def test_dlq_refuses_bad_input(imctl: Imctl) -> None:
    assert "PARTITION:OFFSET" in refused(await imctl("dlq", "show", "17"), code=2)
    assert "no dead letter at 0:999999999" in refused(await imctl("dlq", "show", "0:999999999"))
    assert "no dead letter at 99:0" in refused(await imctl("dlq", "replay", "99:0", "--dry-run"))
    assert "--since" in refused(await imctl("dlq", "list", "--since", "yesterday"), code=2)
    assert (await imctl("dlq", "list", "--limit", "0")).exit_code == 2


async def test_lag_lists_the_suites_groups(imctl: Imctl, suite: Suite) -> None:
    await imctl.json("send", unique("s"), unique("c"), "hello", "--as", "creator", "--wait")

    async def lag() -> dict:
        return await imctl.json("lag")

    document = await eventually(lag, lambda d: d["groups"].get(f"{suite.prefix}.moderation") == 0)
    assert {f"{suite.prefix}.moderation", f"{suite.prefix}.quota", f"{suite.prefix}.messaging"} <= set(document["groups"])
    assert document["total"] == sum(document["groups"].values())
    assert all(row["group"].startswith(f"{suite.prefix}.") and row["lag"] >= 0 for row in document["partitions"])
    table = await imctl("lag", "--partitions")
    assert table.exit_code == 0 and f"{suite.prefix}.moderation" in table.stdout and "total lag" in table.stdout


async def test_rebuild_inbox_into_a_fresh_database(imctl: Imctl, suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    await imctl.json("send", seller, creator, "before the rebuild", "--as", "creator", "--wait")
    target = f"r{unique('x').replace('-', '')}"
    result = await imctl("rebuild-inbox", "--target-prefix", target)
    assert result.exit_code == 0, result.output
    assert f"{target}_inbox_projection" in result.stdout and "rows written" in result.stderr  # the progress bar

    again = await imctl.json("rebuild-inbox", "--target-prefix", target, code=1)
    assert "already holds a projection" in again["error"]
    assert (await imctl("rebuild-inbox")).exit_code == 2  # --target-prefix is required


async def test_rebuild_inbox_json(imctl: Imctl) -> None:
    target = f"r{unique('x').replace('-', '')}"
    document = await imctl.json("rebuild-inbox", "--target-prefix", target)
    assert document["target_database"] == f"{target}_inbox_projection"
    assert document["rows_written"] >= 1 and sum(document["replayed"].values()) >= document["rows_written"]


async def test_topics_verifies_every_contract_topic(imctl: Imctl) -> None:
    document = await imctl.json("topics", "--check")
    assert [row["topic"] for row in document["topics"]] == list(ALL_TOPICS)
    assert all(row["state"] == "present" and row["partitions"] >= 1 for row in document["topics"])
    created = await imctl.json("topics")  # idempotent: everything exists already
    assert {row["state"] for row in created["topics"]} == {"present"}
    table = await imctl("topics")
    assert table.exit_code == 0 and "im.dlq" in table.stdout and "(internal)" in table.stdout
    assert (await imctl("topics", "--partitions", "0")).exit_code == 2
