"""Boundaries of ids and text, explored with generated inputs."""

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from im_contracts import ContractError, parse, topics
from tests.contracts.examples import wire_body

ID_ALPHABET = string.ascii_letters + string.digits + "_-"

valid_ids = st.text(alphabet=ID_ALPHABET, min_size=1, max_size=64)
too_long_ids = st.text(alphabet=ID_ALPHABET, min_size=65, max_size=100)
ids_with_a_foreign_char = st.tuples(
    st.text(alphabet=ID_ALPHABET, max_size=30),
    st.characters().filter(lambda char: char not in ID_ALPHABET),
    st.text(alphabet=ID_ALPHABET, max_size=30),
).map("".join)

whitespace = st.text(alphabet=" \t\n\r\u00a0\u2003", max_size=5)
visible_chars = st.characters(blacklist_categories=("Z", "Cc", "Cs"))


def _send(**fields):
    return parse(topics.SEND_REQUESTED, wire_body("SendMessage", **fields))


@given(seller_id=valid_ids, creator_id=valid_ids)
def test_ids_of_allowed_chars_up_to_64_are_accepted(seller_id, creator_id):
    send = _send(seller_id=seller_id, creator_id=creator_id)

    assert (send.seller_id, send.creator_id) == (seller_id, creator_id)


@given(bad_id=st.one_of(too_long_ids, ids_with_a_foreign_char))
def test_other_ids_are_refused(bad_id):
    with pytest.raises(ContractError, match="seller_id"):
        _send(seller_id=bad_id)


@given(length=st.integers(min_value=1, max_value=2000), char=visible_chars, before=whitespace, after=whitespace)
def test_text_of_1_to_2000_chars_after_trimming_is_accepted_and_trimmed(length, char, before, after):
    core = char * length

    assert _send(text=before + core + after).text == core


@given(length=st.integers(min_value=2001, max_value=2100), char=visible_chars, padding=whitespace)
def test_text_over_2000_chars_after_trimming_is_refused(length, char, padding):
    with pytest.raises(ContractError, match="text must be 1 to 2,000 characters"):
        _send(text=padding + char * length + padding)


@given(blank=whitespace)
def test_blank_text_is_refused(blank):
    with pytest.raises(ContractError, match="got 0"):
        _send(text=blank)
