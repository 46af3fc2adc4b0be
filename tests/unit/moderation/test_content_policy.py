"""The content policy: parsing, matching, and reloading its file (R14)."""

import os
from pathlib import Path

import pytest

from services.moderation.domain import ContentPolicy, ContentPolicyError, word_matcher
from services.moderation.policy import ContentPolicyFile, read_policy

SHIPPED = Path(__file__).resolve().parents[3] / "services" / "moderation" / "content-rules.yaml"


def rule_ids(policy: ContentPolicy) -> list[str]:
    return [rule.rule_id for rule in policy.rules]


# --- parsing -------------------------------------------------------------------------


def test_terms_come_before_patterns_and_the_first_match_wins() -> None:
    policy = ContentPolicy.from_mapping(
        {
            "patterns": [{"id": "digits", "pattern": r"\d{4}"}],
            "banned_terms": [{"id": "first", "terms": ["alpha"]}, {"id": "second", "terms": ["alpha", "beta"]}],
        }
    )
    assert rule_ids(policy) == ["first", "second", "digits"]
    assert policy.first_violation("alpha beta 1234").rule_id == "first"
    assert policy.first_violation("beta 1234").rule_id == "second"
    assert policy.first_violation("1234").rule_id == "digits"
    assert policy.first_violation("nothing here") is None


@pytest.mark.parametrize(
    ("term", "text", "matches"),
    [
        ("cash app", "Pay with CASH APP.", True),
        ("cash app", "pay with cash\n  app", True),
        ("cash app", "cash apples", False),
        ("cash", "cashmere", False),
        ("cash", "in cash!", True),
        ("paypal.me", "go to paypal.me/bob", True),
        ("paypal.me", "paypalxme", False),  # the dot is literal
        ("$$$", "earn $$$ fast", True),
        ("straße", "STRASSE", False),  # case-insensitive, not transliterating
        ("Straße", "die straße", True),
    ],
)
def test_terms_are_whole_words_ignoring_case(term: str, text: str, matches: bool) -> None:
    policy = ContentPolicy.from_mapping({"banned_terms": [{"id": "t", "terms": [term]}]})
    assert (policy.first_violation(text) is not None) is matches
    assert word_matcher(term)  # a usable expression for every accepted term


def test_patterns_ignore_case_unless_they_opt_out() -> None:
    policy = ContentPolicy.from_mapping(
        {"patterns": [{"id": "loud", "pattern": "(?-i:[A-Z]{5,})"}, {"id": "code", "pattern": "promo-\\d+"}]}
    )
    assert policy.first_violation("BUY NOWWW").rule_id == "loud"
    assert policy.first_violation("buy nowww") is None
    assert policy.first_violation("Promo-12").rule_id == "code"


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ([], "must be a mapping"),
        ({"banned_term": []}, "unknown top-level keys: banned_term"),
        ({"banned_terms": {"id": "x"}}, "banned_terms must be a list"),
        ({"banned_terms": ["venmo"]}, "banned_terms[0]: must be a mapping"),
        ({"banned_terms": [{"terms": ["x"]}]}, "id must be"),
        ({"banned_terms": [{"id": " x", "terms": ["x"]}]}, "id must be"),
        ({"banned_terms": [{"id": "x" * 129, "terms": ["x"]}]}, "id must be"),
        ({"banned_terms": [{"id": "x"}]}, "terms is required"),
        ({"banned_terms": [{"id": "x", "terms": []}]}, "non-empty list"),
        ({"banned_terms": [{"id": "x", "terms": ["ok", "  "]}]}, "non-empty list"),
        ({"banned_terms": [{"id": "x", "terms": ["a"], "detail": ""}]}, "detail must be"),
        ({"patterns": [{"id": "p", "pattern": "("}]}, "patterns[0] (p): invalid regular expression"),
        ({"patterns": [{"id": "p", "pattern": ""}]}, "non-empty string"),
        ({"banned_terms": [{"id": "x", "terms": ["a"]}], "patterns": [{"id": "x", "pattern": "b"}]}, "'x' is used twice"),
        ({"patterns": [{"id": "text-length", "pattern": "b"}]}, "reserved"),
    ],
)
def test_a_bad_document_is_refused_with_its_problem(document: object, problem: str) -> None:
    with pytest.raises(ContentPolicyError, match=None) as refused:
        ContentPolicy.from_mapping(document)
    assert problem in str(refused.value)


def test_an_empty_document_has_no_rules() -> None:
    assert ContentPolicy.from_mapping(None).rules == ()
    assert ContentPolicy.from_mapping({"banned_terms": None}).rules == ()


def test_shipped_policy_loads() -> None:
    policy = read_policy(SHIPPED)
    assert rule_ids(policy) == ["off-platform-payment", "off-platform-contact", "email-address"]
    assert policy.first_violation("send it by Western  Union").rule_id == "off-platform-payment"
    assert policy.first_violation("my mail: Ann.Lee@shop.example.com").rule_id == "email-address"
    assert policy.first_violation("Love this cashmere sweater, 20% commission!") is None


# --- the file, reloaded while running --------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write(path: Path, text: str, mtime_ns: int) -> None:
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(mtime_ns, mtime_ns))  # a distinct mtime even on coarse file systems


TERMS_V1 = "banned_terms:\n  - id: v1\n    terms: [alpha]\n"
TERMS_V2 = "banned_terms:\n  - id: v2\n    terms: [beta]\n"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def policy_file(tmp_path: Path, clock: Clock) -> ContentPolicyFile:
    path = tmp_path / "rules.yaml"
    write(path, TERMS_V1, 1_000_000_000)
    return ContentPolicyFile(path, check_interval=1.0, clock=clock)


def test_an_edit_is_picked_up_after_the_check_interval(policy_file: ContentPolicyFile, clock: Clock) -> None:
    assert rule_ids(policy_file.current()) == ["v1"]
    write(policy_file.path, TERMS_V2, 2_000_000_000)
    clock.now += 0.5
    assert rule_ids(policy_file.current()) == ["v1"]  # looked at most once per interval
    clock.now += 0.5
    assert rule_ids(policy_file.current()) == ["v2"]


def test_an_unchanged_file_is_not_read_again(policy_file: ContentPolicyFile, clock: Clock) -> None:
    first = policy_file.current()
    clock.now += 5
    assert policy_file.current() is first


def test_a_broken_edit_keeps_the_rules_in_force_until_fixed(policy_file: ContentPolicyFile, clock: Clock) -> None:
    write(policy_file.path, "banned_terms: [unclosed", 2_000_000_000)
    clock.now += 1
    assert rule_ids(policy_file.current()) == ["v1"]
    write(policy_file.path, "patterns:\n  - id: bad\n    pattern: '('\n", 3_000_000_000)
    clock.now += 1
    assert rule_ids(policy_file.current()) == ["v1"]
    write(policy_file.path, TERMS_V2, 4_000_000_000)
    clock.now += 1
    assert rule_ids(policy_file.current()) == ["v2"]


def test_a_removed_file_keeps_the_rules_and_its_return_is_picked_up(policy_file: ContentPolicyFile, clock: Clock) -> None:
    policy_file.path.unlink()
    clock.now += 1
    assert rule_ids(policy_file.current()) == ["v1"]
    write(policy_file.path, TERMS_V2, 2_000_000_000)
    clock.now += 1
    assert rule_ids(policy_file.current()) == ["v2"]


def test_a_bad_file_at_startup_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("patterns: [{id: p, pattern: '('}]")
    with pytest.raises(ContentPolicyError, match="invalid regular expression"):
        ContentPolicyFile(path)
    with pytest.raises(ContentPolicyError, match="cannot read"):
        ContentPolicyFile(tmp_path / "missing.yaml")
