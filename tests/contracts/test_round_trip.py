import json

import pytest

from im_contracts import MODEL_BY_TYPE, TOPIC_BY_TYPE, encode, parse, topic_of, topics
from tests.contracts.examples import EXAMPLES


def test_examples_cover_every_type():
    assert set(EXAMPLES) == set(MODEL_BY_TYPE)


def test_every_topic_carries_types_and_every_type_one_topic():
    assert set(TOPIC_BY_TYPE.values()) == set(topics.ALL_TOPICS)
    assert set(topics.PUBLIC_TOPICS) == set(topics.ALL_TOPICS) - {topics.SEND_SCREENED, topics.SEND_ADMITTED}


def test_type_tag_matches_class_name():
    for type_name, model in MODEL_BY_TYPE.items():
        assert model.__name__ == type_name


@pytest.mark.parametrize("type_name", sorted(EXAMPLES))
def test_round_trip_through_topic_union(type_name):
    message = EXAMPLES[type_name]
    body = encode(message)

    parsed = parse(topic_of(message), body)

    assert parsed == message
    assert type(parsed) is type(message)


@pytest.mark.parametrize("type_name", sorted(EXAMPLES))
def test_body_carries_type_and_schema_version(type_name):
    body = json.loads(encode(EXAMPLES[type_name]))

    assert body["type"] == type_name
    assert body["schema_version"] == 1


@pytest.mark.parametrize("type_name", sorted(EXAMPLES))
def test_parse_accepts_decoded_dicts(type_name):
    message = EXAMPLES[type_name]

    assert parse(topic_of(message), json.loads(encode(message))) == message


def test_unknown_fields_are_ignored_for_forward_compatibility():
    body = EXAMPLES["SendMessage"].model_dump(mode="json") | {"added_later": {"x": 1}}

    assert parse(topics.SEND_REQUESTED, body) == EXAMPLES["SendMessage"]


def test_timestamps_are_rfc3339_with_timezone():
    body = json.loads(encode(EXAMPLES["SendMessage"]))

    assert body["occurred_at"] == "2026-01-06T17:30:00Z"


def test_offset_timestamps_are_accepted():
    body = EXAMPLES["SendMessage"].model_dump(mode="json") | {"occurred_at": "2026-01-06T09:30:00-08:00"}

    assert parse(topics.SEND_REQUESTED, body) == EXAMPLES["SendMessage"]
