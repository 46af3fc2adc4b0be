"""The ACLs are what DESIGN §1 and §8 say, read from the code; credentials
files are Kafka's client-properties format, private, and kept once made."""

import stat
from pathlib import Path

from services.common.credentials import OPS, PRINCIPALS, UPSTREAM, ensure_credentials, properties_path
from services.common.kafka_client import client_options, settings_of
from services.common.principals import Grant, grants

# DESIGN §1: what each service consumes and produces (every one also follows im.moderation.events for R13).
CONSUMES = {
    "moderation": {"im.send.requested", "im.moderation.commands"},
    "quota": {"im.send.screened", "im.directory.events", "im.collaboration.events", "im.moderation.events"},
    "messaging": {"im.send.admitted", "im.bulk.requested", "im.send.rejected"},
    "inbox-projection": {"im.send.delivered", "im.inbox.commands", "im.moderation.events", "im.directory.events"},
    "collaboration-card": {"im.collaboration.commands", "im.send.delivered", "im.send.rejected"},
}
PRODUCES = {
    "moderation": {"im.send.screened", "im.send.rejected", "im.moderation.events"},
    "quota": {"im.send.admitted", "im.send.rejected", "im.quota.events"},
    "messaging": {"im.send.delivered", "im.send.requested", "im.bulk.completed"},
    "inbox-projection": set(),
    "collaboration-card": {"im.send.requested", "im.collaboration.events"},
}


def topics(principal: str, operation: str) -> set[str]:
    return {g.name for g in grants() if g.principal == principal and g.resource == "topic" and g.operation == operation}


def test_each_service_reads_what_it_consumes_and_writes_what_it_produces() -> None:
    for service in CONSUMES:
        principal = f"im-{service}"
        assert topics(principal, "READ") == CONSUMES[service] | {"im.moderation.events"}, service
        assert topics(principal, "WRITE") == PRODUCES[service] | {"im.dlq"}, service
        groups = {(g.name, g.prefixed) for g in grants(["im", "t1"]) if g.principal == principal and g.resource == "group"}
        assert groups == {(f"im.{service}", False), (f"im.{service}.", True), (f"t1.{service}", False), (f"t1.{service}.", True)}


def test_upstream_writes_the_commands_and_directory_and_reads_the_public_topics() -> None:
    assert topics(UPSTREAM, "WRITE") == {
        "im.send.requested", "im.bulk.requested", "im.moderation.commands", "im.inbox.commands",
        "im.collaboration.commands", "im.directory.events",
    }
    assert "im.send.admitted" not in topics(UPSTREAM, "READ") and "im.send.delivered" in topics(UPSTREAM, "READ")


def test_every_grant_allows_one_named_thing() -> None:
    for grant in grants():
        assert isinstance(grant, Grant) and grant.operation in ("READ", "WRITE") and grant.name not in ("", "*")
        assert grant.principal != OPS  # a super user needs none


def test_credentials_are_private_client_properties_made_once(tmp_path: Path) -> None:
    first = ensure_credentials(tmp_path / "kafka")
    assert set(first) == {"im-broker", *PRINCIPALS}
    assert ensure_credentials(tmp_path / "kafka") == first
    path = properties_path(tmp_path / "kafka", "im-quota")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert "security.protocol=SASL_PLAINTEXT" in lines and "sasl.mechanism=SCRAM-SHA-512" in lines
    options = client_options(settings_of("im-quota", "127.0.0.1:1", tmp_path / "kafka"))
    assert options == {
        "bootstrap_servers": "127.0.0.1:1",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "im-quota",
        "sasl_plain_password": first["im-quota"],
    }
    assert client_options(settings_of("im-quota", "127.0.0.1:1", None)) == {"bootstrap_servers": "127.0.0.1:1", "security_protocol": "PLAINTEXT"}
