"""Hostile record bodies for the consumer fuzz tests: arbitrary bytes, arbitrary
JSON (deep, wide, huge numbers, NaN/Infinity, duplicate keys, control
characters, lone surrogates), and every contract type of a topic with each of
its fields replaced by a value of the wrong type or out of range."""

import json
import uuid
from collections import Counter
from typing import Any

from hypothesis import strategies as st

from im_contracts import ContractModel, kafka_key
from im_contracts.unions import TOPIC_MODELS
from tests.contracts.examples import EXAMPLES

ID_FIELDS = ("command_id", "event_id")


def topics_of(subscriber: Any) -> set[str]:
    return {getattr(topic, "name", topic) for topic in subscriber.topics}


def subscriptions(runtime: Any) -> Counter[str]:
    """Topic → how many of the runtime's subscribers (consumer groups) read it."""
    return Counter(topic for sub in runtime.broker.subscribers for topic in topics_of(sub))


def fresh(example: ContractModel) -> dict[str, Any]:
    """The example as a JSON dict with fresh ids, so it is a new command, not a replay."""
    body = example.model_dump(mode="json")
    text = json.dumps(body)
    for name in ID_FIELDS:
        if name in body:  # everywhere: a SendAdmitted repeats its command_id in its send
            text = text.replace(json.dumps(body[name]), json.dumps(f"fz-{uuid.uuid4().hex}"))
    return json.loads(text)


def examples_of(topic: str) -> list[ContractModel]:
    return [EXAMPLES[model.model_fields["type"].default] for model in TOPIC_MODELS[topic]]


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50),
    st.text(alphabet=st.characters(codec="utf-8", categories=("Cc", "Cf", "Zl", "Zp")), max_size=20),
    st.sampled_from(["", " ", "1e999999999", "-1", "NaN", "Infinity", "0x10", "9" * 400, "x" * 3000, "bad id!", "\u0000"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=12), inner, max_size=6)),
    max_leaves=30,
)

raw_text = st.one_of(
    # Raw JSON text no encoder writes: literal NaN, huge exponents, duplicate keys, lone surrogates, depth.
    st.sampled_from([
        '{"a": NaN}', '{"a": -Infinity}', '{"a": 1e400}', '{"a": -1e400}', '{"a": 1e-400}',
        '{"a": ' + "9" * 5000 + "}", '{"a": 1, "a": 2}', '{"command_id": "x", "command_id": ["y"]}',
        '{"a": "\\ud800"}', '{"a": "\\udfff\\ud800"}', '{"\\ud83d": 1}', '{"a": "\\u0000\\u001f"}',
        "\ufeff{}", "{}", "[]", "null", "", " ", "{", '{"a": "', "\x00", "[" * 70 + "]" * 70,
    ]),
    st.integers(65, 120_000).map(lambda n: "[" * n + "]" * n),
    st.integers(65, 50_000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.integers(65, 20_000).map(lambda n: '{"type": "SendMessage", "text": ' + "[" * n + "]" * n + "}"),
    st.integers(1000, 50_000).map(lambda n: "[" + ",".join(["{}"] * n) + "]"),  # wide, shallow
)


def wrong_fields(topic: str) -> st.SearchStrategy[tuple[bytes, bytes | None]]:
    """A contract body of the topic with one field replaced, dropped or added, keyed like the original."""

    def mutate(example: ContractModel, data: st.DataObject) -> tuple[bytes, bytes | None]:
        body = fresh(example)
        field = data.draw(st.sampled_from(sorted(body) + ["unknown_field"]), label="field")
        action = data.draw(st.sampled_from(["replace", "replace", "replace", "drop"]), label="action")
        if action == "drop":
            body.pop(field, None)
        else:
            body[field] = data.draw(json_values, label="value")
        text = json.dumps(body, allow_nan=True, ensure_ascii=data.draw(st.booleans(), label="ascii"))
        return text.encode("utf-8", errors="surrogatepass"), kafka_key(example)

    return st.builds(lambda example, data: mutate(example, data), st.sampled_from(examples_of(topic)), st.data())


def hostile_records(topic: str) -> st.SearchStrategy[tuple[bytes, bytes | None]]:
    """(value, key) pairs for a topic; the key is mostly present (its absence is one more fault)."""
    keys = st.one_of(st.just(b"k"), st.just(b"k"), st.just(b"k"), st.none(), st.binary(min_size=1, max_size=8))
    return st.one_of(
        wrong_fields(topic),
        st.tuples(st.binary(max_size=300), keys),
        st.tuples(json_values.map(lambda v: json.dumps(v, allow_nan=True).encode()), keys),
        st.tuples(raw_text.map(lambda t: t.encode("utf-8", errors="surrogatepass")), keys),
        st.tuples(st.sampled_from(examples_of(topic)).map(lambda e: json.dumps(fresh(e)).encode()), keys),
    )


# The fixed classes the integration fuzz sends to every consumed topic of the running suite.
HOSTILE_CASES: dict[str, bytes] = {
    "nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
    "objects nested 20,000 deep": b'{"command_id": "fz", "a": ' + b'{"a": ' * 20_000 + b"1" + b"}" * 20_001,
    "not UTF-8": b"\xff\xfe\x00garbage",
    "not JSON": b"{not json",
    "NaN": b'{"type": "SendMessage", "a": NaN}',
    "1e400": b'{"type": "SendMessage", "a": 1e400}',
    "integer past 64 bits": b'{"type": "SendMessage", "a": 123456789012345678901234567890}',
    "duplicate keys": b'{"type": "SendMessage", "type": "SendMessage"}',
    "lone surrogate": b'{"type": "SendMessage", "text": "\\ud800"}',
    "control characters": b'{"type": "\\u0000\\u001b", "command_id": "\\u0007"}',
    "a JSON array": b"[1, 2, 3]",
    "wide": b"[" + b",".join([b"{}"] * 30_000) + b"]",
}
