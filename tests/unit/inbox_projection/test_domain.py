"""Inbox rows (R11, R12, R15, R17): folders, read marks, flags, profiles, and
that a row depends on the facts it saw, not the order they came in."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from im_contracts import (
    ArchiveConversation,
    CreatorBlocked,
    CreatorProfileUpdated,
    CreatorUnblocked,
    InboxFolder,
    MarkConversationRead,
    MessageDelivered,
    SellerAccessChanged,
    SellerBlocked,
    SellerUnblocked,
    StarConversation,
    UnarchiveConversation,
    UnstarConversation,
)
from services.inbox_projection.domain import (
    Conversation,
    CreatorProfile,
    Flag,
    Stamp,
    from_document,
    inbox_item,
    to_document,
    from_micros,
    micros,
)
from services.inbox_projection.projector import ProjectionFold, change_for

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SELLER, CREATOR = "s1", "c1"
F = InboxFolder


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def delivered(seq: int, sender: str, when: float, text: str = "hi") -> MessageDelivered:
    return MessageDelivered(
        event_id=f"e{seq}",
        occurred_at=at(when),
        command_id=f"cmd{seq}",
        message_id=f"m{seq}",
        conversation_id=f"{SELLER}:{CREATOR}",
        seq=seq,
        seller_id=SELLER,
        creator_id=CREATOR,
        sender=sender,
        kind="text",
        text=text,
        entry_point="api",
        sent_at=at(when),
        quota_charged=False,
    )


def command(kind: type, when: float, command_id: str = "", **extra) -> object:
    return kind(command_id=command_id or f"{kind.__name__}-{when}", occurred_at=at(when), seller_id=SELLER, creator_id=CREATOR, **extra)


def moderation(kind: type, when: float) -> object:
    return kind(event_id=f"{kind.__name__}-{when}", occurred_at=at(when), command_id="x", seller_id=SELLER, creator_id=CREATOR)


def profile(when: float, followers: int = 1000, event_id: str = "") -> CreatorProfileUpdated:
    return CreatorProfileUpdated(
        event_id=event_id or f"p-{when}",
        occurred_at=at(when),
        creator_id=CREATOR,
        nickname="Kat",
        followers=followers,
        main_category="Beauty",
        sales_gmv_30d=Decimal("1500.5"),
    )


def apply(*events: object, row: Conversation | None = None) -> Conversation:
    row = row or Conversation(SELLER, CREATOR)
    for event in events:
        if isinstance(event, CreatorProfileUpdated):
            row = row.with_profile(CreatorProfile.from_event(event))
        else:
            change = change_for(event)  # type: ignore[arg-type]
            assert change is not None
            row = change(row)
    return row


# --- messages ------------------------------------------------------------------


def test_a_row_without_messages_is_in_no_folder() -> None:
    row = apply(command(StarConversation, 1))
    assert not row.has_messages and row.folders == () and row.starred


def test_last_message_unread_and_unreplied_follow_the_latest_seq() -> None:
    row = apply(delivered(1, "seller", 1), delivered(2, "creator", 2, text="yo"))
    assert row.last_message is not None and (row.last_message.seq, row.last_message.text) == (2, "yo")
    assert (row.unread_count, row.unreplied) == (1, True)
    assert row.folders == (F.MESSAGES, F.UNREAD, F.UNREPLIED)
    row = apply(delivered(3, "seller", 3), row=row)
    assert (row.unread_count, row.unreplied) == (1, False)
    assert row.folders == (F.MESSAGES, F.UNREAD)


def test_a_replayed_or_older_seq_changes_nothing() -> None:
    row = apply(delivered(1, "creator", 1), delivered(2, "creator", 2))
    assert apply(delivered(2, "creator", 2), delivered(1, "creator", 1), row=row) == row


def test_last_activity_only_grows() -> None:
    row = apply(delivered(1, "creator", 10), delivered(2, "seller", 5))
    assert row.last_activity == at(10)


def test_seller_messages_are_never_unread() -> None:
    assert apply(delivered(1, "seller", 1), delivered(2, "seller", 2)).unread_count == 0


# --- read marks (R17) -------------------------------------------------------------


def test_mark_read_up_to_seq_leaves_later_creator_messages_unread() -> None:
    row = apply(*(delivered(i, "creator", i) for i in range(1, 5)), command(MarkConversationRead, 10, up_to_seq=2))
    assert row.unread_count == 2 and [m.seq for m in row.unread] == [3, 4]


def test_mark_read_without_seq_reads_what_was_delivered_by_then() -> None:
    row = apply(delivered(1, "creator", 1), delivered(2, "creator", 2), command(MarkConversationRead, 3))
    assert row.unread_count == 0 and F.UNREAD not in row.folders
    row = apply(delivered(3, "creator", 4), row=row)
    assert row.unread_count == 1


def test_a_mark_that_precedes_its_messages_still_reads_them() -> None:
    row = apply(command(MarkConversationRead, 3, up_to_seq=1), delivered(1, "creator", 1), delivered(2, "creator", 2))
    assert [m.seq for m in row.unread] == [2]


def test_read_marks_never_move_back() -> None:
    row = apply(*(delivered(i, "creator", i) for i in range(1, 4)), command(MarkConversationRead, 10, up_to_seq=3))
    assert apply(command(MarkConversationRead, 11, up_to_seq=1), row=row).unread_count == 0


# --- star and archive (R15) --------------------------------------------------------


def test_starred_folder_holds_archived_rows_too() -> None:
    row = apply(delivered(1, "creator", 1), command(StarConversation, 2), command(ArchiveConversation, 3))
    assert row.folders == (F.STARRED, F.ARCHIVED)
    assert apply(command(UnstarConversation, 4), row=row).folders == (F.ARCHIVED,)


def test_archived_rows_leave_messages_unread_and_unreplied() -> None:
    row = apply(delivered(1, "creator", 1), command(ArchiveConversation, 2))
    assert row.unread_count == 1 and row.unreplied and row.folders == (F.ARCHIVED,)


def test_a_new_creator_message_unarchives() -> None:
    row = apply(delivered(1, "creator", 1), command(ArchiveConversation, 2), delivered(2, "creator", 3))
    assert not row.archived and row.folders == (F.MESSAGES, F.UNREAD, F.UNREPLIED)


def test_a_new_seller_message_keeps_the_row_archived() -> None:
    row = apply(delivered(1, "creator", 1), command(ArchiveConversation, 2), delivered(2, "seller", 3))
    assert row.archived and row.folders == (F.ARCHIVED,)


def test_archiving_after_the_creator_message_archives_again() -> None:
    row = apply(delivered(1, "creator", 1), command(ArchiveConversation, 2), delivered(2, "creator", 3), command(ArchiveConversation, 4))
    assert row.archived


def test_unarchive_by_command() -> None:
    row = apply(delivered(1, "seller", 1), command(ArchiveConversation, 2), command(UnarchiveConversation, 3))
    assert row.folders == (F.MESSAGES,)


def test_the_latest_command_wins_whatever_the_arrival_order() -> None:
    star, unstar = command(StarConversation, 2), command(UnstarConversation, 1)
    assert apply(star, unstar).starred and apply(unstar, star).starred


# --- blocked icons (R11, R12) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "unblock", "attribute"),
    [(CreatorBlocked, CreatorUnblocked, "blocked"), (SellerBlocked, SellerUnblocked, "blocked_by_creator")],
)
def test_blocked_flags_follow_the_latest_event(block: type, unblock: type, attribute: str) -> None:
    row = apply(delivered(1, "seller", 1), moderation(block, 2))
    assert getattr(row, attribute) is True
    assert getattr(apply(moderation(unblock, 3), row=row), attribute) is False
    assert getattr(apply(moderation(unblock, 1.5), row=row), attribute) is True  # an older unblock


# --- profiles ------------------------------------------------------------------------


def test_the_newest_profile_wins() -> None:
    row = apply(profile(5, followers=500), profile(3, followers=300))
    assert row.profile is not None and row.profile.followers == 500


def test_profile_ties_break_on_event_id() -> None:
    a, b = profile(5, followers=1, event_id="a"), profile(5, followers=2, event_id="b")
    assert apply(a, b).profile == apply(b, a).profile


# --- stored form and API item -----------------------------------------------------------


def test_document_round_trip_keeps_the_row() -> None:
    row = apply(
        delivered(1, "creator", 1.0004),
        command(StarConversation, 2),
        command(MarkConversationRead, 1.5, up_to_seq=1),
        delivered(2, "creator", 2.5),
        moderation(SellerBlocked, 3),
        profile(4),
    )
    doc = to_document(row)
    assert from_document(doc) == row
    assert doc["folders"] == ["messages", "unread", "unreplied", "starred"]
    assert (doc["followers"], doc["main_category"], doc["sales_gmv_30d"]) == (1000, "Beauty", 1500.5)


def test_times_are_stored_as_exact_microseconds() -> None:
    moment = datetime(2026, 1, 1, 0, 0, 0, 123999, tzinfo=UTC)
    assert from_micros(micros(moment)) == moment and micros(moment) < micros(moment + timedelta(microseconds=1))


def test_commands_a_microsecond_apart_keep_their_order_through_the_database_form() -> None:
    row = apply(delivered(1, "seller", 1), command(ArchiveConversation, 2, command_id="z"), command(UnarchiveConversation, 2.000001, command_id="a"))
    assert from_document(to_document(row)) == row and not row.archived


# --- order independence ---------------------------------------------------------------------


def _conversation_events(draw: st.DrawFn) -> tuple[list[object], list[object]]:
    """(deliveries in seq order, other facts in any order)."""
    messages = draw(st.integers(0, 6))
    times = sorted(draw(st.lists(st.integers(0, 10_000), min_size=messages, max_size=messages)))
    deliveries = [delivered(i + 1, draw(st.sampled_from(["seller", "creator"])), t / 1000) for i, t in enumerate(times)]
    when = st.integers(0, 10_000).map(lambda ms: ms / 1000)
    fact = st.one_of(
        st.builds(lambda w, k: command(k, w), when, st.sampled_from([StarConversation, UnstarConversation, ArchiveConversation, UnarchiveConversation])),
        st.builds(lambda w, s: command(MarkConversationRead, w, up_to_seq=s), when, st.none() | st.integers(1, 7)),
        st.builds(lambda w, k: moderation(k, w), when, st.sampled_from([CreatorBlocked, CreatorUnblocked, SellerBlocked, SellerUnblocked])),
        st.builds(lambda w, f: profile(w, followers=f), when, st.integers(0, 10)),
    )
    return deliveries, draw(st.lists(fact, max_size=8, unique_by=lambda e: getattr(e, "event_id", None) or e.command_id))


@st.composite
def interleavings(draw: st.DrawFn) -> tuple[list[object], list[object]]:
    deliveries, facts = _conversation_events(draw)
    first = draw(st.permutations(facts))
    second_facts = draw(st.permutations(facts))
    merged: list[object] = []
    pending = list(deliveries)
    for fact in second_facts:
        while pending and draw(st.booleans()):
            merged.append(pending.pop(0))
        merged.append(fact)
    merged.extend(pending)
    replays = draw(st.lists(st.sampled_from(merged), max_size=3)) if merged else []
    return [*deliveries, *first], merged + replays


@settings(max_examples=200, deadline=None)
@given(interleavings())
def test_a_row_is_the_same_whatever_the_interleaving_of_topics_and_replays(orders: tuple[list[object], list[object]]) -> None:
    one, other = orders
    assert to_document(apply(*one)) == to_document(apply(*other))


def test_inbox_item_has_design_fields() -> None:
    row = apply(delivered(1, "creator", 1), profile(2))
    item = inbox_item(to_document(row))
    assert set(item) == {"conversation_id", "creator_id", "creator", "last_message", "unread_count", "unreplied", "starred", "archived", "blocked", "blocked_by_creator"}
    assert item["creator"]["sales_gmv_30d"] == "1500.50"
    assert item["last_message"] == {"message_id": "m1", "seq": 1, "sender": "creator", "kind": "text", "text": "hi", "sent_at": "2026-03-01T12:00:01Z"}
    assert set(inbox_item(to_document(Conversation(SELLER, CREATOR)))["creator"].values()) == {None}


@settings(max_examples=200, deadline=None)
@given(interleavings())
def test_an_inbox_item_shows_the_row_it_was_stored_from(orders: tuple[list[object], list[object]]) -> None:
    row = apply(*orders[0])
    item = inbox_item(to_document(row))
    assert item["conversation_id"] == row.conversation_id and item["creator_id"] == row.creator_id
    assert (item["unread_count"], item["unreplied"], item["starred"], item["archived"], item["blocked"], item["blocked_by_creator"]) == (
        row.unread_count, row.unreplied, row.starred, row.archived, row.blocked, row.blocked_by_creator
    )
    assert (item["last_message"] and item["last_message"]["seq"]) == (row.last_message and row.last_message.seq)
    assert item["creator"]["followers"] == (row.profile and row.profile.followers)


def test_flag_stamps_order_by_time_then_id() -> None:
    assert Stamp(at(1), "b") > Stamp(at(1), "a") and Stamp(at(2), "a") > Stamp(at(1), "z")
    assert Flag(True, Stamp(at(1), "a")) != Flag(False, Stamp(at(1), "a"))


# --- the rebuild's in-memory fold ------------------------------------------------------------


def test_the_fold_builds_the_rows_the_live_changes_build() -> None:
    other_creator_profile = profile(9).model_copy(update={"creator_id": "c-nobody"})
    events = [profile(0.5, followers=5), delivered(1, "creator", 1), command(StarConversation, 2), profile(3, followers=7), delivered(2, "seller", 4), other_creator_profile]
    fold = ProjectionFold()
    assert [fold.apply(e) for e in events] == [True] * len(events)
    assert not fold.apply(SellerAccessChanged(event_id="a", occurred_at=at(5), command_id="x", seller_id=SELLER, status="active"))
    (row,) = fold.rows()  # a profile alone never makes a row
    assert to_document(row) == to_document(apply(*events[:-1]))
    assert row.profile is not None and row.profile.followers == 7
