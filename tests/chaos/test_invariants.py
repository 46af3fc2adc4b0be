"""The fault tests' judge, on made-up evidence: it passes a clean round and
names each kind of violation (no infrastructure needed)."""

import json
from datetime import datetime, timezone

from im_contracts import DeadLetter, MessageDelivered, MessageRejected
from im_contracts.topics import DLQ, QUOTA_EVENTS, SEND_DELIVERED, SEND_REJECTED, SEND_REQUESTED

from tests.chaos.invariants import Evidence, Rec, check
from tests.chaos.workload import DELIVERED, Poison, plan_poison, plan_workload, rejected

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def delivered(send, seq: int, message_id: str | None = None) -> bytes:  # type: ignore[no-untyped-def]
    return MessageDelivered(
        event_id=f"e-{send.command_id}", occurred_at=NOW, command_id=send.command_id,
        message_id=message_id or f"m-{send.command_id}", conversation_id=f"{send.seller_id}:{send.creator_id}", seq=seq,
        seller_id=send.seller_id, creator_id=send.creator_id, sender=send.sender, kind="text", text=send.text,
        entry_point=send.entry_point, sent_at=send.occurred_at, quota_charged=False,
    ).model_dump_json().encode()


def refused(send, reason: str = "CONTENT_REJECTED") -> bytes:  # type: ignore[no-untyped-def]
    return MessageRejected(
        event_id=f"r-{send.command_id}", occurred_at=NOW, command_id=send.command_id, seller_id=send.seller_id,
        creator_id=send.creator_id, sender=send.sender, stage="moderation", reason=reason, detail="no",
    ).model_dump_json().encode()


class Round:
    """A clean round: every send ended as planned, stored once, in seq order."""

    def __init__(self) -> None:
        self.workload = plan_workload(30, 5, seed=7, tag="unit")
        self.expected = {p.command_id: p for p in self.workload.sends}
        self.records: list[Rec] = []
        self.stored: list[dict] = []
        offsets: dict[int, int] = {}
        for n, (conversation, script) in enumerate(self.workload.conversations.items()):
            partition, seq = n % 3, 0
            for planned in script:
                offset = offsets[partition] = offsets.get(partition, -1) + 1
                if planned.expect == DELIVERED:
                    seq += 1
                    value = delivered(planned.send, seq)
                    self.records.append(Rec(SEND_DELIVERED, partition, offset, conversation.encode(), value))
                    self.stored.append({"_id": planned.command_id, "conversation_id": conversation, "seq": seq, "delivered": value.decode()})
                else:
                    self.records.append(Rec(SEND_REJECTED, partition, offset, conversation.encode(), refused(planned.send)))
        self.poison: list[Poison] = []

    def evidence(self) -> Evidence:
        return Evidence(self.expected, set(self.workload.conversations), self.poison, self.records, self.stored)

    def first(self, topic: str = SEND_DELIVERED) -> Rec:
        return next(r for r in self.records if r.topic == topic)


def kinds(evidence: Evidence) -> set[str]:
    return {line.split(":")[0] for line in check(evidence).violations}


def test_a_clean_round_passes_and_identical_repeats_are_counted() -> None:
    r = Round()
    assert any(p.expect == rejected("CONTENT_REJECTED") for p in r.expected.values())
    repeat = r.first()
    r.records.append(Rec(repeat.topic, repeat.partition, 999, repeat.key, repeat.value))
    verdict = check(r.evidence())
    assert verdict.ok, verdict.violations
    assert verdict.counts.duplicates == 1
    assert verdict.counts.delivered + verdict.counts.rejected == verdict.counts.sends == 30


def test_a_missing_outcome_is_named() -> None:
    r = Round()
    r.records.remove(r.first())
    assert "no outcome" in kinds(r.evidence())


def test_two_message_ids_and_both_outcomes_are_named() -> None:
    r = Round()
    first = r.first()
    command_id = json.loads(first.value)["command_id"]
    send = r.expected[command_id].send
    seq = json.loads(first.value)["seq"]
    r.records.append(Rec(SEND_DELIVERED, first.partition, 998, first.key, delivered(send, seq, message_id="other")))
    r.records.append(Rec(SEND_REJECTED, first.partition, 999, first.key, refused(send)))
    assert {"two message_ids", "delivered and rejected"} <= kinds(r.evidence())


def test_gaps_and_order_of_seq_are_named() -> None:
    r = Round()
    conversation = next(c for c, s in r.workload.conversations.items() if sum(p.expect == DELIVERED for p in s) >= 2)
    mine = [i for i, rec in enumerate(r.records) if rec.topic == SEND_DELIVERED and rec.key == conversation.encode()]
    a, b = r.records[mine[0]], r.records[mine[1]]
    # Swap the offsets of the first two deliveries: seq 2 published before seq 1.
    r.records[mine[0]] = Rec(a.topic, a.partition, b.offset, a.key, a.value)
    r.records[mine[1]] = Rec(b.topic, b.partition, a.offset, b.key, b.value)
    assert "seq not increasing" in kinds(r.evidence())

    r = Round()
    last = max((i for i, rec in enumerate(r.records) if rec.key == conversation.encode() and rec.topic == SEND_DELIVERED))
    rec = r.records[last]
    body = json.loads(rec.value)
    body["seq"] += 1
    r.records[last] = Rec(rec.topic, rec.partition, rec.offset, rec.key, json.dumps(body).encode())
    assert "seq not 1..n" in kinds(r.evidence())


def test_storage_is_checked_against_what_was_published() -> None:
    r = Round()
    r.stored.pop()
    assert "not stored once" in kinds(r.evidence())
    r = Round()
    rejected_id = next(c for c, p in r.expected.items() if p.expect != DELIVERED)
    r.stored.append({"_id": rejected_id, "conversation_id": "x:y", "seq": 1, "delivered": "{}"})
    assert "stored without a delivery" in kinds(r.evidence())


def test_poison_must_be_dead_lettered_by_every_reader_and_no_valid_send_may_be() -> None:
    r = Round()
    poison = plan_poison(r.workload).records
    for n, p in enumerate(poison):
        p.partition, p.offset = 0, 1000 + n
    r.poison = poison
    assert "poison not dead-lettered" in kinds(r.evidence())

    def letter(p: Poison, service: str, command_id: str | None = None) -> Rec:
        value = DeadLetter.for_record(event_id="d", occurred_at=NOW, service=service, topic=p.topic, partition=p.partition,
                                      offset=p.offset, key=p.key, value=p.value, error="bad", command_id=command_id)
        return Rec(DLQ, 0, 0, None, value.model_dump_json().encode())

    r.records += [letter(p, s) for p in poison for s in p.services]
    r.expected.update({p.command.command_id: p.command for p in poison if p.command})
    for p in poison:  # what the pipeline answers to poison carrying a readable command_id
        if p.command and p.command.expect.startswith("rejected:"):
            reason = p.command.expect.split(":", 1)[1]
            r.records.append(Rec(SEND_REJECTED, 0, 2000, None, refused(p.command.send, reason)))
    verdict = check(r.evidence())
    assert verdict.ok, verdict.violations

    valid = next(c for c, p in r.expected.items() if p.expect == DELIVERED)
    fake = Poison("valid", SEND_REQUESTED, None, b"{}", partition=0, offset=5000)
    r.records.append(letter(fake, "moderation", command_id=valid))
    assert "valid send dead-lettered" in kinds(r.evidence())


def test_a_creator_charged_twice_is_named() -> None:
    r = Round()
    a, b = [p for p in r.expected.values() if p.send.sender == "seller"][:2]
    for planned in (a, b):
        charge = {"type": "OutreachCharged", "command_id": planned.command_id, "seller_id": "s", "creator_id": "c", "week_start": "2026-11-01"}
        r.records.append(Rec(QUOTA_EVENTS, 0, 0, None, json.dumps(charge).encode()))
    assert "creator charged twice in a week" in kinds(r.evidence())
