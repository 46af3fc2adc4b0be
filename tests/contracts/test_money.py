import json
import re
from decimal import Decimal

import pytest
from pydantic import ValidationError

from im_contracts import SellerGmvUpdated, encode, parse, topics
from im_contracts.schema import render_schemas
from tests.contracts.examples import EXAMPLES, with_changes, wire_body


@pytest.mark.parametrize(
    ("given", "expected_json"),
    [
        (Decimal("1234.50"), "1234.50"),
        (Decimal("1234.5"), "1234.50"),
        (Decimal("7"), "7.00"),
        (Decimal("1E+3"), "1000.00"),
        (Decimal("0.125"), "0.125"),
        (Decimal("-0"), "0.00"),
    ],
)
def test_money_is_written_as_a_decimal_string(given, expected_json):
    event = with_changes(EXAMPLES["SellerGmvUpdated"], gmv_30d=given)

    assert json.loads(encode(event))["gmv_30d"] == expected_json


@pytest.mark.parametrize(
    ("given", "expected"),
    [(1234.5, "1234.5"), (1234, "1234"), ("1234.50", "1234.50"), ("1e3", "1000")],
)
def test_money_accepts_numbers_and_strings(given, expected):
    event = parse(topics.DIRECTORY_EVENTS, wire_body("SellerGmvUpdated", gmv_30d=given))

    assert isinstance(event, SellerGmvUpdated)
    assert event.gmv_30d == Decimal(expected)


def test_money_accepts_json_numbers():
    raw = json.dumps(wire_body("SellerGmvUpdated", gmv_30d=0.1))

    assert parse(topics.DIRECTORY_EVENTS, raw).gmv_30d == Decimal("0.1")


def test_rate_is_written_as_a_decimal_string():
    body = json.loads(encode(EXAMPLES["SendProductCard"]))

    assert body["product"]["commission_rate"] == "0.15"
    assert body["product"]["price"] == "49.90"


def test_python_dump_keeps_decimals():
    assert EXAMPLES["SellerGmvUpdated"].model_dump()["gmv_30d"] == Decimal("1234.50")


def test_written_amounts_match_the_published_schema_pattern():
    pattern = json.loads(render_schemas()["SellerGmvUpdated.json"])["properties"]["gmv_30d"]["anyOf"][1]["pattern"]

    for amount in ["0", "0.1", "1234.5", "1E+7", "0.125"]:
        written = json.loads(encode(with_changes(EXAMPLES["SellerGmvUpdated"], gmv_30d=Decimal(amount))))["gmv_30d"]
        assert re.fullmatch(pattern, written), written


@pytest.mark.parametrize("amount", ["1e-999999999", "1e999999999", "1E+400", "0." + "0" * 20 + "1"])
def test_an_amount_whose_plain_notation_would_be_huge_is_refused(amount: str) -> None:
    """Found while building the consumer fuzz: "1e-999999999" validated, and its plain notation is a billion characters."""
    with pytest.raises(ValidationError):
        SellerGmvUpdated.model_validate({**wire_body("SellerGmvUpdated"), "gmv_30d": amount})
