"""Bulk sends (R19): fan a BulkSendMessage out into per-creator SendMessages
and report BulkSendCompleted once every one of them has an outcome.

All state is in the database, so any instance can pick a job up after a
restart: the job notes how far its fan-out got, and completion is checked
whenever an outcome arrives (delivered here, rejected from im.send.rejected).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from im_contracts import BulkSendMessage, ReasonCode, new_event_id
from im_contracts.topics import BULK_COMPLETED, SEND_REQUESTED

from services.common.outbox import Outgoing, Publisher
from services.messaging.domain import (
    bulk_job_document,
    bulk_summary,
    fan_out_of,
    is_fan_out_of,
    outcome_document,
    remaining_chunks,
)
from services.messaging.store import BulkStore


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one fan-out send: delivered here, or rejected on im.send.rejected."""

    command_id: str
    bulk_id: str
    creator_id: str | None
    outcome: str
    reason: ReasonCode | None
    correlation_id: str | None


class BulkCoordinator:
    def __init__(self, store: BulkStore, publisher: Publisher) -> None:
        self.store = store
        self.publisher = publisher

    async def fan_out(self, bulk: BulkSendMessage, correlation_id: str | None) -> None:
        """Publish the job's sends, a chunk at a time without waiting for each
        ack in turn; every ack is in before this returns (and the bulk command's
        offset is committed). A redelivered command fans out the stored job,
        never a different creator set."""
        job = await self.store.record_job(bulk_job_document(bulk, datetime.now(UTC)))
        sends = fan_out_of(job)
        for progress, chunk in remaining_chunks(sends, job["fanned_out"]):
            await self.publisher.send([Outgoing.of(SEND_REQUESTED, send) for send in chunk], correlation_id)
            await self.store.note_progress(job["_id"], progress)

    async def record_outcome(self, **fields: Any) -> None:
        await self.record_outcomes([Outcome(**fields)])

    async def record_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        """Count fan-out outcomes towards their jobs (one read of the jobs, one write
        of the outcomes and one count per job) and complete the jobs they finish."""
        if not outcomes:  # most batches carry no fan-out: no read of the jobs
            return
        jobs = await self.store.find_jobs(list({outcome.bulk_id for outcome in outcomes}))
        by_job: dict[str, dict[str, dict[str, Any]]] = {}
        correlation: dict[str, str | None] = {}
        for outcome in outcomes:
            job = jobs.get(outcome.bulk_id)
            if job is None or not is_fan_out_of(job, outcome.command_id, outcome.creator_id):
                continue  # a bulk_id this service never fanned out
            assert outcome.creator_id is not None
            by_job.setdefault(job["_id"], {})[outcome.command_id] = outcome_document(
                outcome.command_id, outcome.bulk_id, outcome.creator_id, outcome.outcome, str(outcome.reason) if outcome.reason else None
            )
            correlation.setdefault(job["_id"], outcome.correlation_id)
        for bulk_id, documents in by_job.items():
            job = jobs[bulk_id]
            tallied = await self.store.count_outcomes(job, list(documents.values()))
            # Checked on every (re)delivery, so a crash right after the last outcome
            # is counted still completes the job when that outcome is redelivered.
            if tallied >= job["total"]:
                await self._complete(job, correlation[bulk_id])

    async def _complete(self, job: dict[str, Any], correlation_id: str | None) -> None:
        completion = await self.store.find_completion(job["_id"])
        if completion is None:
            summary = bulk_summary(
                job, await self.store.outcomes_of(job), event_id=new_event_id(), occurred_at=datetime.now(UTC)
            )
            if summary is None:
                return
            completion = await self.store.record_completion(job["_id"], Outgoing.of(BULK_COMPLETED, summary))
        if not completion["published"]:
            await self.publisher.send([Outgoing.from_document(completion["outgoing"])], correlation_id)
            await self.store.mark_published(job["_id"])
