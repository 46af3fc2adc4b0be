"""imctl without infrastructure: where it looks for the suite, how it parses
operator input, and that every failure ends in one line."""

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from im_contracts import utcnow
from imctl.app import app
from imctl.operations import letter_id, since_of
from imctl.output import BAD_INPUT, Refused
from imctl.settings import ImctlSettings, http_client, path
from services.common import tokens
from services.common.auth import Authenticator
from services.common.settings import ServiceSettings


def test_service_urls_follow_the_port_base_and_can_be_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IM_PORT_BASE", "14100")
    monkeypatch.setenv("IMCTL_URLS", '{"quota": "http://quota.internal:8080/"}')
    settings = ImctlSettings()
    assert settings.service_url("messaging") == "http://127.0.0.1:14101"
    assert settings.service_url("inbox-projection") == "http://127.0.0.1:14104"
    assert settings.service_url("quota") == "http://quota.internal:8080"
    assert ImctlSettings(port_base=8100).service_url("collaboration-card") == "http://127.0.0.1:8105"


def test_connection_settings_are_read_like_the_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("MONGODB_URI", "mongodb://db:27017/")
    monkeypatch.setenv("IM_GROUP_PREFIX", "staging")
    settings = ImctlSettings()
    assert (settings.kafka_bootstrap_servers, settings.mongodb_uri, settings.group_prefix) == ("kafka:9092", "mongodb://db:27017/", "staging")


def test_the_token_travels_as_a_bearer_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMCTL_TOKEN", "abc.def.ghi")
    with http_client(ImctlSettings(), "inbox-projection") as client:
        assert client.headers["Authorization"] == "Bearer abc.def.ghi"
    monkeypatch.delenv("IMCTL_TOKEN")
    with http_client(ImctlSettings(), "inbox-projection") as client:
        assert "Authorization" not in client.headers


def test_ids_in_paths_are_quoted() -> None:
    assert path("v1", "sellers", "a/../b", "inbox") == "/v1/sellers/a%2F..%2Fb/inbox"


def test_since_takes_durations_and_timestamps() -> None:
    assert abs(since_of("15m") - (utcnow() - timedelta(minutes=15))) < timedelta(seconds=5)
    assert abs(since_of("2d") - (utcnow() - timedelta(days=2))) < timedelta(seconds=5)
    assert since_of("2026-03-01T08:00:00Z").isoformat() == "2026-03-01T08:00:00+00:00"
    for bad in ("yesterday", "15", "2026-03-01"):
        with pytest.raises(Refused) as refused:
            since_of(bad)
        assert refused.value.code == BAD_INPUT


def test_dead_letter_ids_are_partition_and_offset() -> None:
    assert letter_id("3:17") == (3, 17)
    for bad in ("17", "a:1", "1:", "-1:2"):
        with pytest.raises(Refused):
            letter_id(bad)


def test_an_unreachable_broker_is_one_line_without_a_traceback() -> None:
    result = CliRunner().invoke(app, ["topics", "--check"], env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"})
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("imctl: cannot reach Kafka")
    assert "Traceback" not in result.output


def test_every_command_has_help() -> None:
    names = ["send", "bulk", "block", "unblock", "block-seller", "unblock-seller", "access", "star", "unstar", "archive",
             "unarchive", "read", "inbox", "history", "quota", "blocks", "lag", "rebuild-inbox", "topics"]
    for args in [[name] for name in names] + [["dlq", "list"], ["dlq", "show"], ["dlq", "replay"]]:
        result = CliRunner().invoke(app, [*args, "--help"])
        assert result.exit_code == 0 and "--json" in result.stdout, (args, result.output)


async def test_token_mints_a_token_the_services_accept(tmp_path):
    jwks = tokens.init(tmp_path)
    result = CliRunner().invoke(app, ["token", "--role", "seller", "--sub", "s1", "--json"], env={"IMCTL_AUTH_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    minted = json.loads(result.stdout)
    caller = await Authenticator(str(jwks), ServiceSettings().auth_issuer).verify(minted["token"])
    assert (caller.role, caller.sub) == ("seller", "s1")


def test_token_without_a_signing_key_is_refused_in_one_line(tmp_path):
    result = CliRunner().invoke(app, ["token", "--role", "ops", "--sub", "me"], env={"IMCTL_AUTH_DIR": str(tmp_path)})
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().startswith("imctl: no signing key")
