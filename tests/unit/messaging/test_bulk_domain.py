"""Bulk fan-out and summary rules (R19), without I/O."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from im_contracts import BulkSendMessage, EntryPoint, ReasonCode, Sender, fan_out_command_id
from services.messaging.domain import (
    DELIVERED,
    REJECTED,
    bulk_job_document,
    bulk_summary,
    fan_out_of,
    is_fan_out_of,
    outcome_document,
    remaining_chunks,
)

AT = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def bulk(creators: int = 3, command_id: str = "bulk-1") -> BulkSendMessage:
    return BulkSendMessage(
        command_id=command_id,
        occurred_at=AT,
        seller_id="s1",
        creator_ids=tuple(f"c{i}" for i in range(creators)),
        text=" Hello all! ",
    )


def test_fan_out_of_a_stored_job_is_one_send_per_creator_with_derived_ids() -> None:
    job = bulk_job_document(bulk(), AT)
    sends = fan_out_of(job)
    assert [s.command_id for s in sends] == [fan_out_command_id("bulk-1", f"c{i}") for i in range(3)]
    assert {(s.bulk_id, s.entry_point, s.sender, s.seller_id, s.text, s.occurred_at) for s in sends} == {
        ("bulk-1", EntryPoint.BULK, Sender.SELLER, "s1", "Hello all!", AT)
    }


def test_fan_out_of_a_stored_job_is_byte_identical_to_the_command_s_own() -> None:
    command = bulk()
    job = bulk_job_document(command, AT)
    assert [s.model_dump_json() for s in fan_out_of(job)] == [s.model_dump_json() for s in command.fan_out()]


def test_job_records_total_and_no_progress() -> None:
    job = bulk_job_document(bulk(5), AT)
    assert (job["_id"], job["total"], job["fanned_out"], job["creator_ids"]) == ("bulk-1", 5, 0, [f"c{i}" for i in range(5)])


@given(total=st.integers(1, 500), progress=st.integers(-5, 520), size=st.integers(1, 150))
def test_remaining_chunks_resume_after_the_noted_progress(total: int, progress: int, size: int) -> None:
    sends = list(range(total))
    chunks = remaining_chunks(sends, progress, size)  # type: ignore[arg-type]
    published = [s for _, chunk in chunks for s in chunk]
    start = min(max(progress, 0), total)
    assert published == sends[start:]
    assert all(len(chunk) <= size for _, chunk in chunks)
    notes = [note for note, _ in chunks]
    assert notes == sorted(notes) and (not notes or notes[-1] == total)
    assert all(note == sends.index(chunk[-1]) + 1 for note, chunk in chunks)


def test_only_the_job_s_own_fan_outs_count() -> None:
    job = bulk_job_document(bulk(2), AT)
    assert is_fan_out_of(job, "bulk-1:c0", "c0")
    assert not is_fan_out_of(job, "bulk-1:c9", "c9")  # not in the job
    assert not is_fan_out_of(job, "other:c0", "c0")  # a different command id
    assert not is_fan_out_of(job, "bulk-1:c0", None)  # unreadable rejection


def test_summary_waits_for_every_creator() -> None:
    job = bulk_job_document(bulk(3), AT)
    outcomes = [outcome_document("bulk-1:c0", "bulk-1", "c0", DELIVERED, None)]
    assert bulk_summary(job, outcomes, event_id="e", occurred_at=AT) is None


def test_summary_counts_delivered_and_rejected_by_reason() -> None:
    job = bulk_job_document(bulk(5), AT)
    outcomes = [
        outcome_document("bulk-1:c0", "bulk-1", "c0", DELIVERED, None),
        outcome_document("bulk-1:c1", "bulk-1", "c1", REJECTED, "BLOCKED_BY_CREATOR"),
        outcome_document("bulk-1:c2", "bulk-1", "c2", REJECTED, "QUOTA_EXHAUSTED"),
        outcome_document("bulk-1:c3", "bulk-1", "c3", REJECTED, "QUOTA_EXHAUSTED"),
        outcome_document("bulk-1:c4", "bulk-1", "c4", DELIVERED, None),
    ]
    summary = bulk_summary(job, outcomes, event_id="e1", occurred_at=AT)
    assert summary is not None
    assert (summary.command_id, summary.seller_id, summary.total, summary.delivered, summary.rejected) == ("bulk-1", "s1", 5, 2, 3)
    assert summary.rejected_by_reason == {ReasonCode.BLOCKED_BY_CREATOR: 1, ReasonCode.QUOTA_EXHAUSTED: 2}


@pytest.mark.parametrize("delivered", [0, 4])
def test_summary_of_a_uniform_bulk(delivered: int) -> None:
    job = bulk_job_document(bulk(4), AT)
    outcomes = [
        outcome_document(f"bulk-1:c{i}", "bulk-1", f"c{i}", DELIVERED if i < delivered else REJECTED, None if i < delivered else "SELLER_ACCESS_REVOKED")
        for i in range(4)
    ]
    summary = bulk_summary(job, outcomes, event_id="e1", occurred_at=AT)
    assert summary is not None and (summary.delivered, summary.rejected) == (delivered, 4 - delivered)
