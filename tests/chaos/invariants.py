"""The delivery guarantees (DESIGN §6, I1–I5) checked on what one round left
behind: every outcome record, dead letter and outreach charge read back from
Kafka, and the messages stored in messaging's database. Pure functions: the
scenario collects the evidence, this judges it."""

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from im_contracts import DeadLetter
from im_contracts.topics import DLQ, QUOTA_EVENTS, SEND_DELIVERED, SEND_REJECTED

from tests.chaos.workload import DELIVERED, NO_DELIVERY, Planned, Poison

MAX_LISTED = 10  # violations of one kind listed in full; the rest are counted


@dataclass(frozen=True)
class Rec:
    """One Kafka record as read back."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    at: float = 0.0  # monotonic time it was read


@dataclass
class Evidence:
    expected: dict[str, Planned]  # command_id -> what it must end in
    conversations: set[str]
    poison: list[Poison]
    records: list[Rec]  # outcomes, dead letters and outreach charges, in read order
    stored: list[dict[str, Any]]  # messaging's `messages` documents of the round's conversations


@dataclass
class Counts:
    sends: int = 0
    delivered: int = 0
    rejected: int = 0
    duplicates: int = 0  # outcome records beyond the first of their command (identical re-publications)
    dead_letters: int = 0
    poison: int = 0
    stored: int = 0
    charges: int = 0


@dataclass
class Verdict:
    counts: Counts = field(default_factory=Counts)
    violations: list[str] = field(default_factory=list)
    _kinds: Counter[str] = field(default_factory=Counter)

    def violate(self, kind: str, detail: str) -> None:
        self._kinds[kind] += 1
        if self._kinds[kind] <= MAX_LISTED:
            self.violations.append(f"{kind}: {detail}")
        elif self._kinds[kind] == MAX_LISTED + 1:
            self.violations.append(f"{kind}: … more of this kind (see the total below)")

    def summary(self) -> list[str]:
        totals = [f"{kind}: {n} in all" for kind, n in self._kinds.items() if n > MAX_LISTED]
        return self.violations + totals

    @property
    def ok(self) -> bool:
        return not self.violations


def _json(value: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(value)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def outcome_records(records: Iterable[Rec], tracked: set[str]) -> dict[str, list[tuple[Rec, dict[str, Any]]]]:
    """Outcome records (delivered and rejected) of tracked commands, in read order."""
    found: dict[str, list[tuple[Rec, dict[str, Any]]]] = defaultdict(list)
    for rec in records:
        if rec.topic in (SEND_DELIVERED, SEND_REJECTED):
            body = _json(rec.value)
            if body is not None and body.get("command_id") in tracked:
                found[body["command_id"]].append((rec, body))
    return found


def check(evidence: Evidence) -> Verdict:
    verdict = Verdict()
    counts = verdict.counts
    tracked = set(evidence.expected)
    outcomes = outcome_records(evidence.records, tracked)
    counts.sends = sum(1 for p in evidence.expected.values() if p.expect != NO_DELIVERY)
    counts.poison = len(evidence.poison)

    # I1: exactly one outcome per command; repeats byte-identical; never two message_ids.
    delivered_by_command: dict[str, tuple[Rec, dict[str, Any]]] = {}
    for command_id, planned in evidence.expected.items():
        found = outcomes.get(command_id, [])
        distinct = {rec.value for rec, _ in found}
        kinds = {rec.topic for rec, _ in found}
        counts.duplicates += len(found) - len(distinct)
        if not found:
            if planned.expect != NO_DELIVERY:
                verdict.violate("no outcome", f"{command_id} (expected {planned.expect})")
            continue
        if kinds == {SEND_DELIVERED, SEND_REJECTED}:
            verdict.violate("delivered and rejected", command_id)
        if len(distinct) > 1:
            message_ids = {body.get("message_id") for _, body in found if body.get("type") == "MessageDelivered"}
            if len(message_ids) > 1:
                verdict.violate("two message_ids", f"{command_id}: {sorted(map(str, message_ids))}")
            else:
                verdict.violate("repeat not byte-identical", f"{command_id}: {len(distinct)} different bodies")
        first_rec, first = found[0]
        if first_rec.topic == SEND_DELIVERED:
            counts.delivered += 1
            delivered_by_command[command_id] = (first_rec, first)
            got = DELIVERED
        else:
            counts.rejected += 1
            got = f"rejected:{first.get('reason')}"
        if planned.expect == NO_DELIVERY:
            if got == DELIVERED:
                verdict.violate("poison delivered", command_id)
        elif got != planned.expect:
            verdict.violate("unexpected outcome", f"{command_id}: {got}, expected {planned.expect}")

    _check_sequences(evidence, delivered_by_command, outcomes, verdict)
    _check_stored(evidence, delivered_by_command, verdict)
    _check_dead_letters(evidence, verdict)
    _check_charges(evidence, verdict)
    return verdict


def _check_sequences(
    evidence: Evidence,
    delivered_by_command: dict[str, tuple[Rec, dict[str, Any]]],
    outcomes: dict[str, list[tuple[Rec, dict[str, Any]]]],
    verdict: Verdict,
) -> None:
    """R1/I5: per conversation seq is 1..n (distinct by command), and the first
    publication of each command comes in seq order within its partition."""
    by_conversation: dict[str, list[int]] = defaultdict(list)
    for rec, body in delivered_by_command.values():
        by_conversation[body["conversation_id"]].append(body["seq"])
    for conversation, seqs in by_conversation.items():
        if sorted(seqs) != list(range(1, len(seqs) + 1)):
            repeated = sorted(s for s, n in Counter(seqs).items() if n > 1)
            missing = sorted(set(range(1, len(seqs) + 1)) - set(seqs))
            verdict.violate("seq not 1..n", f"{conversation}: repeated {repeated[:10]}, missing {missing[:10]}")
    firsts = sorted(
        (found[0][0] for found in outcomes.values() if found and found[0][0].topic == SEND_DELIVERED),
        key=lambda rec: (rec.partition, rec.offset),
    )
    last: dict[str, tuple[int, int]] = {}
    partitions: dict[str, int] = {}
    for rec in firsts:
        body = _json(rec.value) or {}
        conversation, seq = body.get("conversation_id"), body.get("seq")
        if conversation in partitions and partitions[conversation] != rec.partition:
            verdict.violate("conversation on two partitions", f"{conversation}: {partitions[conversation]} and {rec.partition}")
        partitions[conversation] = rec.partition
        if conversation in last and seq <= last[conversation][0]:
            verdict.violate("seq not increasing", f"{conversation}: seq {seq} at offset {rec.offset} after seq {last[conversation][0]} at offset {last[conversation][1]}")
        last[conversation] = (seq, rec.offset)


def _check_stored(evidence: Evidence, delivered_by_command: dict[str, tuple[Rec, dict[str, Any]]], verdict: Verdict) -> None:
    """I2: each delivered command is stored once, as published; nothing else is stored."""
    verdict.counts.stored = len(evidence.stored)
    stored_by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for doc in evidence.stored:
        stored_by_id[doc["_id"]].append(doc)
    for command_id, (rec, body) in delivered_by_command.items():
        docs = stored_by_id.get(command_id, [])
        if len(docs) != 1:
            verdict.violate("not stored once", f"{command_id}: {len(docs)} stored")
            continue
        doc = docs[0]
        if doc.get("seq") != body["seq"] or doc.get("delivered") != rec.value.decode():
            verdict.violate("stored differs from published", f"{command_id}: stored seq {doc.get('seq')}, published {body['seq']}")
    for command_id in stored_by_id.keys() - delivered_by_command.keys():
        planned = evidence.expected.get(command_id)
        verdict.violate("stored without a delivery", f"{command_id} (expected {planned.expect if planned else 'nothing'})")
    per_conversation = Counter(doc["conversation_id"] for doc in evidence.stored)
    seqs: dict[str, Counter[int]] = defaultdict(Counter)
    for doc in evidence.stored:
        seqs[doc["conversation_id"]][doc["seq"]] += 1
    for conversation, n in per_conversation.items():
        if sorted(seqs[conversation]) != list(range(1, n + 1)):
            verdict.violate("stored seq not 1..n", conversation)


def _check_dead_letters(evidence: Evidence, verdict: Verdict) -> None:
    """I3: every poison record is dead-lettered by each service that reads its
    topic, with the original bytes; no valid send is ever dead-lettered."""
    letters: dict[tuple[str, int, int], list[DeadLetter]] = defaultdict(list)
    valid = {c for c, p in evidence.expected.items() if p.expect == DELIVERED}
    for rec in evidence.records:
        if rec.topic != DLQ:
            continue
        try:
            letter = DeadLetter.model_validate_json(rec.value)
        except ValueError:
            verdict.violate("unreadable dead letter", f"{rec.partition}/{rec.offset}")
            continue
        letters[(letter.topic, letter.partition, letter.offset)].append(letter)
        if letter.command_id in valid:
            verdict.violate("valid send dead-lettered", f"{letter.command_id} by {letter.service}: {letter.error[:200]}")
    for poison in evidence.poison:
        found = letters.get((poison.topic, poison.partition, poison.offset), [])
        verdict.counts.dead_letters += len(found)
        by = {letter.service for letter in found}
        for service in poison.services:
            if service not in by:
                verdict.violate("poison not dead-lettered", f"{poison.name} ({poison.topic} {poison.partition}/{poison.offset}) by {service}")
        for letter in found:
            if letter.payload_bytes() != poison.value:
                verdict.violate("dead letter lost bytes", f"{poison.name} by {letter.service}")


def letters_complete(evidence: Evidence) -> bool:
    """Whether every poison record has its dead letters (the round may stop waiting)."""
    seen: set[tuple[str, int, int, str]] = set()
    for rec in evidence.records:
        if rec.topic == DLQ:
            body = _json(rec.value) or {}
            seen.add((body.get("topic"), body.get("partition"), body.get("offset"), body.get("service")))
    return all((p.topic, p.partition, p.offset, s) in seen for p in evidence.poison for s in p.services)


def _check_charges(evidence: Evidence, verdict: Verdict) -> None:
    """I2: a redelivery never charges quota twice: one distinct OutreachCharged
    per command and per (seller, creator, week)."""
    by_command: dict[str, set[bytes]] = defaultdict(set)
    by_pair: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for rec in evidence.records:
        if rec.topic != QUOTA_EVENTS:
            continue
        body = _json(rec.value) or {}
        if body.get("type") != "OutreachCharged" or body.get("command_id") not in evidence.expected:
            continue
        by_command[body["command_id"]].add(rec.value)
        by_pair[(body["seller_id"], body["creator_id"], str(body["week_start"]))].add(body["command_id"])
    verdict.counts.charges = len(by_command)
    for command_id, bodies in by_command.items():
        if len(bodies) > 1:
            verdict.violate("charged twice", f"{command_id}: {len(bodies)} different OutreachCharged")
    for pair, commands in by_pair.items():
        if len(commands) > 1:
            verdict.violate("creator charged twice in a week", f"{pair}: {sorted(commands)}")
