"""One fault round against the chaos instance: a burst of sends across many
conversations, one fault injected in the middle of it (sends go on while it
lasts, the rest of the burst follows once every service is ready), a wait
(progress logged) until every command has its outcome, then the invariants of
``tests.chaos.invariants`` on what Kafka and messaging's database hold.

    instance = ChaosInstance(); instance.start()
    result = asyncio.run(run_round(instance, "kill:messaging", sends=300, conversations=60))
    assert result.verdict.ok, result.verdict.summary()

Faults (``FAULTS``; ``EXTRA_FAULTS`` are also accepted):
``kill:<service>`` SIGKILL (supervisord restarts it), ``term:<service>``
SIGTERM and start again (``supervisorctl restart``: a graceful handover),
``restart-kafka``, ``restart-mongo``, ``kill-mongo`` (SIGKILL of the database,
then started again), ``poison`` (every kind, see
``workload.plan_poison``), ``outage-start:<service>`` (the database stopped, the
service restarted into the outage must answer /readyz 503 naming the
database, the database back, the service ready), ``kafka-outage[:SECONDS]`` and
``mongo-outage[:SECONDS]`` (the daemon stopped that long, default 50 s;
beyond the services' 120 s producer request timeout, e.g. ``kafka-outage:150``,
a service whose idempotent producer broke restarts itself), ``none``.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber, ProducerFenced, UnknownProducerId
from pymongo import MongoClient

from im_contracts import ContractModel, kafka_key
from im_contracts.topics import DIRECTORY_EVENTS, DLQ, QUOTA_EVENTS, SEND_DELIVERED, SEND_REJECTED, SEND_REQUESTED

from services.common.kafka_client import client_options
from services.common.settings import KafkaSettings

from tests.chaos.instance import PIPELINE, SERVICES, ChaosInstance
from tests.chaos.invariants import Evidence, Rec, Verdict, check, letters_complete, outcome_records
from tests.chaos.workload import NO_DELIVERY, Planned, PoisonSet, Workload, encoded, plan_poison, plan_workload

log = logging.getLogger("chaos")

FAULTS = ("kill:moderation", "kill:quota", "kill:messaging", "restart-kafka", "restart-mongo", "kill-mongo", "poison")
EXTRA_FAULTS = (
    "term:moderation", "term:quota", "term:messaging",
    "kill:inbox-projection", "kill:collaboration-card",
    "outage-start:messaging", "outage-start:quota", "outage-start:moderation",
    "kafka-outage", "mongo-outage",
    "none",
)
OUTAGE_SECONDS = 50.0
RESERVE_SECONDS = 120.0  # sends planned for traffic during a fault, in seconds of during_rate
RECORDED_TOPICS = (SEND_DELIVERED, SEND_REJECTED, DLQ, QUOTA_EVENTS)
PROGRESS_EVERY = 5.0


def outage_seconds(fault: str) -> float:
    kind, _, seconds = fault.partition(":")
    if kind in ("kafka-outage", "mongo-outage"):
        return float(seconds or OUTAGE_SECONDS)
    return 0.0


def known_fault(name: str) -> bool:
    kind, _, seconds = name.partition(":")
    if kind in ("kafka-outage", "mongo-outage") and seconds:
        try:
            return float(seconds) >= 0
        except ValueError:
            return False
    return name in FAULTS or name in EXTRA_FAULTS


@dataclass
class FaultReport:
    name: str
    started: float = 0.0  # seconds after the burst started
    seconds: float = 0.0  # until the fault was over and every service ready again
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # violations seen while injecting (outage readiness)


@dataclass
class RoundResult:
    fault: str
    round: int
    verdict: Verdict
    fault_report: FaultReport
    published: int = 0
    publish_retries: int = 0
    drain_seconds: float = 0.0  # burst start to the last first outcome
    total_seconds: float = 0.0
    timed_out: bool = False
    sent_during_fault: int = 0

    @property
    def ok(self) -> bool:
        return self.verdict.ok and not self.timed_out


# --- reading back --------------------------------------------------------------------


class Recorder:
    """Reads the outcome, dead-letter and quota topics from the offsets they had
    when the round began. Partitions are assigned by hand (no consumer group),
    so a broker restart cannot reset a position past records not yet read."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._consumer = AIOKafkaConsumer(
            **client_options(kafka),
            group_id=None,
            enable_auto_commit=False,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=32 * 1024 * 1024,
            fetch_max_wait_ms=100,
        )
        self.records: list[Rec] = []
        self._task: asyncio.Task[None] | None = None
        self._partitions: list[TopicPartition] = []
        self.changed = asyncio.Event()

    async def start(self) -> None:
        await self._consumer.start()
        for topic in RECORDED_TOPICS:
            partitions = self._consumer.partitions_for_topic(topic)
            for _ in range(100):
                if partitions:
                    break
                # No public call refreshes the metadata of topics not subscribed to.
                await self._consumer._client.force_metadata_update()  # noqa: SLF001
                partitions = self._consumer.partitions_for_topic(topic)
            if not partitions:
                raise RuntimeError(f"topic {topic} has no partitions: were the topics created?")
            self._partitions += [TopicPartition(topic, p) for p in sorted(partitions)]
        self._consumer.assign(self._partitions)
        ends = await self._consumer.end_offsets(self._partitions)
        for tp, end in ends.items():
            self._consumer.seek(tp, end)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _run(self) -> None:
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=200)
            except KafkaError as exc:  # the broker is away: keep the positions, try again
                log.debug("recorder: %s", exc)
                await asyncio.sleep(0.5)
                continue
            now = time.monotonic()
            for tp, records in batches.items():
                self.records += [Rec(tp.topic, tp.partition, r.offset, r.key, r.value or b"", now) for r in records]
            if batches:
                self.changed.set()

    async def catch_up(self, timeout: float = 60) -> None:
        """Wait until everything published so far has been read."""
        ends = await self._consumer.end_offsets(self._partitions)
        deadline = time.monotonic() + timeout
        while True:
            behind = [tp for tp, end in ends.items() if await self._consumer.position(tp) < end]
            if not behind:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the recorder did not catch up with {behind}")
            await asyncio.sleep(0.2)


# --- publishing --------------------------------------------------------------------


class Publisher:
    """Publishes like upstream does (acks=all, idempotent producer); a failed
    send — the broker is being restarted — is retried with the same bytes until
    it is acknowledged (a duplicate on the topic is just a redelivery).

    aiokafka's idempotent producer cannot recover from a batch that expired
    while the broker was away (the next batch is OutOfOrderSequenceNumber
    forever, its sender task is gone): such a producer is replaced."""

    FATAL = (OutOfOrderSequenceNumber, ProducerFenced, UnknownProducerId)

    def __init__(self, kafka: KafkaSettings) -> None:
        self._kafka = kafka
        self._producer = self._new_producer()
        self._generation = 0
        self._replacing = asyncio.Lock()
        self.retries = 0
        self.replaced = 0

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **client_options(self._kafka),
            acks="all",
            enable_idempotence=True,
            max_request_size=8 * 1024 * 1024,
            request_timeout_ms=60_000,  # outlives a broker restart
            linger_ms=5,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def _replace(self, generation: int) -> None:
        async with self._replacing:
            if generation != self._generation:
                return  # another send already replaced it
            old, self._producer = self._producer, self._new_producer()
            self._generation += 1
            self.replaced += 1
            await asyncio.gather(old.stop(), return_exceptions=True)
            await self._producer.start()

    async def send(self, topic: str, value: bytes, key: bytes | None, give_up_after: float = 300) -> tuple[int, int]:
        """(partition, offset) once durable."""
        deadline = time.monotonic() + give_up_after
        while True:
            generation = self._generation
            try:
                meta = await self._producer.send_and_wait(topic, value, key=key)
                return meta.partition, meta.offset
            except KafkaError as exc:
                if time.monotonic() > deadline:
                    raise
                self.retries += 1
                log.info("publish to %s failed (%s: %s); retrying", topic, type(exc).__name__, exc)
                if isinstance(exc, self.FATAL):
                    try:
                        await self._replace(generation)
                    except KafkaError as again:
                        log.info("new producer did not start (%s); retrying", again)
                await asyncio.sleep(0.5)

    async def publish(self, topic: str, message: ContractModel) -> None:
        await self.send(topic, message.model_dump_json().encode(), kafka_key(message))


class Schedule:
    """When the burst's sends go out: ``before`` sends at ``rate``, then — the
    fault is injected — sends at ``during_rate`` for as long as the fault lasts
    (traffic meets the outage itself, whatever the pipeline's speed; 0 holds
    back), then ``after`` sends at ``rate`` once every service is ready again.
    A rate of 0 with ``rate`` means as fast as possible."""

    def __init__(self, before: int, after: int, rate: float, during_rate: float, on_fault: Callable[[], None]) -> None:
        self.before, self.after = max(1, before), max(0, after)
        self._interval = 1 / rate if rate > 0 else 0.0
        self._during_interval = 1 / during_rate if during_rate > 0 else None
        self._on_fault = on_fault
        self.fault_over = asyncio.Event()
        self.issued = {"before": 0, "during": 0, "after": 0}
        self._next = time.monotonic()
        self._lock = asyncio.Lock()

    async def _pace(self, interval: float) -> None:
        now = time.monotonic()
        if self._next > now:
            await asyncio.sleep(self._next - now)
        self._next = max(self._next, now) + interval

    async def ticket(self) -> bool:
        """Wait for the next send's turn; False once the burst is complete."""
        async with self._lock:
            if self.issued["before"] < self.before:
                await self._pace(self._interval)
                self.issued["before"] += 1
                if self.issued["before"] == self.before:
                    self._on_fault()
                return True
            if not self.fault_over.is_set():
                if self._during_interval is None:
                    await self.fault_over.wait()
                else:
                    delay = self._next - time.monotonic()
                    try:
                        await asyncio.wait_for(self.fault_over.wait(), max(delay, 0))
                    except TimeoutError:
                        self._next = max(self._next, time.monotonic()) + self._during_interval
                        self.issued["during"] += 1
                        return True
            if self.issued["after"] < self.after:
                await self._pace(self._interval)
                self.issued["after"] += 1
                return True
            return False


# --- the round ---------------------------------------------------------------------


async def prepare_directory(instance: ChaosInstance, publisher: Publisher, workload: Workload, timeout: float = 120) -> None:
    """Publish the directory facts and wait until quota has every seller at T3."""
    for event in workload.directory:
        await publisher.publish(DIRECTORY_EVENTS, event)
    pending = set(workload.sellers)
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=instance.url("quota"), headers=instance.auth_headers(), timeout=10) as http:
        while pending:
            for seller in sorted(pending):
                try:
                    tier = (await http.get(f"/v1/sellers/{seller}/quota")).json().get("tier")
                except (httpx.HTTPError, ValueError):
                    tier = None
                if tier == "T3":
                    pending.discard(seller)
            if pending:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"quota did not see T3 for {len(pending)} sellers within {timeout}s")
                await asyncio.sleep(0.5)


def read_stored(instance: ChaosInstance, conversations: set[str]) -> list[dict[str, Any]]:
    with MongoClient(instance.mongodb_uri, serverSelectionTimeoutMS=30_000) as client:
        messages = client[instance.database("messaging")]["messages"]
        return list(messages.find({"conversation_id": {"$in": sorted(conversations)}},
                                  {"_id": 1, "conversation_id": 1, "seq": 1, "delivered": 1}))


async def inject(instance: ChaosInstance, fault: str, report: FaultReport, publish_poison: Callable[[], Any]) -> None:
    """Do the fault, then wait until every service is ready again."""
    kind, _, service = fault.partition(":")
    if kind == "kill":
        await instance.kill(service)
    elif kind == "term":
        await instance.terminate(service)
    elif fault in ("restart-kafka", "restart-mongo"):
        await instance.infra("restart", fault.removeprefix("restart-"))
    elif fault == "kill-mongo":  # no clean close: what the database acknowledged must still be there
        await instance.infra("kill", "mongo")
        await instance.infra("start", "mongo")
    elif fault == "poison":
        await publish_poison()
    elif kind == "outage-start":
        await outage_start(instance, service, report)
    elif kind in ("kafka-outage", "mongo-outage"):
        daemon = kind.split("-")[0]
        seconds = float(service or OUTAGE_SECONDS)
        await instance.infra("stop", daemon)
        try:
            await asyncio.sleep(seconds)
        finally:
            await instance.infra("start", daemon)
        report.notes.append(f"{daemon} away {seconds:.0f}s")
    elif fault != "none":
        raise ValueError(f"unknown fault {fault!r}")
    await instance.wait_ready(SERVICES, timeout=300)


async def outage_start(instance: ChaosInstance, service: str, report: FaultReport, hold: float = 5.0) -> None:
    """Start a service during a database outage: it must come up, answer /readyz
    503 naming the database while the outage lasts, and be ready once it ends."""
    await instance.infra("stop", "mongo")
    try:
        await instance.terminate(service)
        deadline = time.monotonic() + 60
        status, body = await instance.areadiness(service)
        while status != 503 and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            status, body = await instance.areadiness(service)
        report.notes.append(f"/readyz during the outage: {status}")
        if status != 503:
            report.problems.append(f"{service} started during a database outage answered /readyz {status or 'nothing'}, not 503")
        elif not (body or {}).get("checks", {}).get("mongodb", {}).get("ok") is False:
            report.problems.append(f"{service}'s /readyz during the outage does not name the database: {body}")
        await asyncio.sleep(hold)
    finally:
        await instance.infra("start", "mongo")
    waited = await instance.wait_ready((service,), timeout=180)
    report.notes.append(f"ready {waited:.1f}s after the database returned")


def drain_timeout_for(sends: int) -> float:
    """Generous: a slow shared machine, plus the fault's recovery."""
    return 180 + 2.0 * sends


async def run_round(
    instance: ChaosInstance,
    fault: str,
    *,
    sends: int = 300,
    conversations: int = 60,
    rate: float = 30.0,
    during_rate: float | None = None,
    fault_at: float = 0.5,
    round_no: int = 1,
    seed: int | None = None,
    drain_timeout: float | None = None,
) -> RoundResult:
    """One burst of ``sends`` with ``fault`` injected once ``fault_at`` of them
    are out; while the fault lasts, more sends go out at ``during_rate``
    (default half of ``rate``) — they count in the round's sends."""
    if not known_fault(fault):
        raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS + EXTRA_FAULTS)}")
    during_rate = rate / 2 if during_rate is None else during_rate
    reserve = int(during_rate * (RESERVE_SECONDS + outage_seconds(fault)))
    workload = plan_workload(sends + reserve, conversations, seed=seed)
    planned = {p.command_id: p for p in workload.sends}
    poison = plan_poison(workload) if fault == "poison" else PoisonSet()
    expected: dict[str, Planned] = {r.command.command_id: r.command for r in poison.records if r.command}
    conversation_ids = set(workload.conversations)
    report = FaultReport(fault)
    drain_timeout = drain_timeout or drain_timeout_for(sends)
    label = f"[{fault} #{round_no}]"

    publisher, recorder = Publisher(instance.kafka), Recorder(instance.kafka)
    try:
        await publisher.start()
        await recorder.start()
        await prepare_directory(instance, publisher, workload)
        log.info("%s %d sends over %d conversations at %s/s, the fault after %d, %s/s while it lasts",
                 label, sends, len(workload.conversations), rate or "max", int(sends * fault_at), during_rate or "none")

        fault_task: asyncio.Task[None] | None = None
        started = time.monotonic()

        async def publish_poison() -> None:
            for record in poison.records:
                record.partition, record.offset = await publisher.send(record.topic, record.value, record.key)
            log.info("%s published %d poison records", label, len(poison.records))

        async def timed_fault() -> None:
            report.started = time.monotonic() - started
            log.info("%s injecting %s at %.1fs", label, fault, report.started)
            try:
                await inject(instance, fault, report, publish_poison)
            finally:
                schedule.fault_over.set()
            report.seconds = time.monotonic() - started - report.started
            log.info("%s %s over, every service ready, after %.1fs (%d sends meanwhile)",
                     label, fault, report.seconds, schedule.issued["during"])

        def start_fault() -> None:
            nonlocal fault_task
            fault_task = asyncio.create_task(timed_fault())

        before = int(sends * fault_at)
        schedule = Schedule(before, sends - before, rate, during_rate, start_fault)

        async def conversation(script: list[Planned]) -> None:
            for send in script:
                if not await schedule.ticket():
                    return
                key, value = encoded(send)
                await publisher.send(SEND_REQUESTED, value, key)
                expected[send.command_id] = send

        publishing = asyncio.gather(*(conversation(s) for s in workload.conversations.values()))
        evidence = Evidence(expected, conversation_ids, poison.records, recorder.records, [])
        deadline = started + drain_timeout
        last_log, timed_out = 0.0, False
        answered: set[str] = set()
        read = 0
        while True:
            await asyncio.sleep(0.25)
            new, read = recorder.records[read:], len(recorder.records)
            answered |= outcome_records(new, planned.keys() | expected.keys()).keys()
            pending = [c for c, p in expected.items() if p.expect != NO_DELIVERY and c not in answered]
            done = (publishing.done() and fault_task is not None and fault_task.done()
                    and not pending and letters_complete(evidence))
            now = time.monotonic()
            if publishing.done() and publishing.exception():
                raise publishing.exception()  # type: ignore[misc]
            if fault_task is not None and fault_task.done() and fault_task.exception():
                raise fault_task.exception()  # type: ignore[misc]
            if done or now > deadline or now - last_log >= PROGRESS_EVERY:
                log.info("%s %5.1fs commands %d (sends %s), outcomes %d/%d%s", label, now - started, len(expected),
                         ", ".join(f"{k} {v}" for k, v in schedule.issued.items()), len(expected) - len(pending),
                         len(expected), "" if fault_task else " (fault not yet injected)")
                last_log = now
            if done:
                break
            if now > deadline:
                timed_out = True
                log.error("%s gave up after %.0fs: %d commands without an outcome, e.g. %s", label, drain_timeout,
                          len(pending), sorted(pending)[:5])
                break
        if not publishing.done():
            publishing.cancel()
        if fault_task is not None and not fault_task.done():
            fault_task.cancel()
        await asyncio.gather(publishing, *(t for t in [fault_task] if t), return_exceptions=True)

        firsts = [found[0][0].at for found in outcome_records(recorder.records, set(expected)).values() if found]
        drain = (max(firsts) - started) if firsts else float("nan")
        await instance.wait_ready(SERVICES, timeout=180)
        await asyncio.sleep(1.0)  # late re-publications of a redelivered command, if any
        await recorder.catch_up()
        evidence.records = list(recorder.records)
        evidence.stored = await asyncio.to_thread(read_stored, instance, conversation_ids)
        verdict = check(evidence)
        for problem in report.problems:
            verdict.violate("fault", problem)
        result = RoundResult(fault, round_no, verdict, report, published=len(expected), publish_retries=publisher.retries,
                             drain_seconds=drain, total_seconds=time.monotonic() - started, timed_out=timed_out,
                             sent_during_fault=schedule.issued["during"])
        log.info("%s %s: %s", label, "ok" if result.ok else "VIOLATED", describe(result))
        for line in verdict.summary():
            log.error("%s   %s", label, line)
        return result
    finally:
        await recorder.stop()
        await publisher.stop()


def describe(result: RoundResult) -> str:
    c = result.verdict.counts
    return (f"sends {c.sends}, delivered {c.delivered}, rejected {c.rejected}, duplicates {c.duplicates}, "
            f"dead letters {c.dead_letters}/{c.poison} poison, stored {c.stored}, {result.sent_during_fault} sent during the fault, "
            f"drain {result.drain_seconds:.1f}s, "
            f"fault {result.fault_report.seconds:.1f}s{'; ' + '; '.join(result.fault_report.notes) if result.fault_report.notes else ''}")


__all__ = ["EXTRA_FAULTS", "FAULTS", "PIPELINE", "RoundResult", "describe", "known_fault", "run_round"]
