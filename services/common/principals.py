"""Who may write what on Kafka (DESIGN §8): every principal's ACLs, and the
provisioning that creates them with the SCRAM credentials (names and passwords:
``services.common.credentials``).

Every service is its own principal, ``im-<service>``, allowed to read the
topics its subscribers consume (read from the code) with its own consumer
groups, and to write the topics it produces (``services.registry``) and
``im.dlq``. ``im-upstream`` writes the command topics and directory events and
reads every public topic; ``im-ops`` is a super user for tooling, like the
broker's own ``im-broker``.

    python -m services.common.principals --bootstrap-servers HOST:PORT [DIR] [--group-prefix im ...]
        as im-ops: SCRAM credentials of every principal in DIR and every ACL (idempotent);
        without DIR (docker-compose) the passwords come from KAFKA_PASSWORD_<NAME>

Consumer groups are ``<group prefix>.<service>[.<purpose>]``. The ACLs name
the groups of the prefixes a deployment uses: ``im`` by default, and the fresh
prefixes of test and bench runs, granted by their tooling (``grant_group_prefix``).
"""

import argparse
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from im_contracts.topics import (
    BULK_REQUESTED,
    COLLABORATION_COMMANDS,
    DIRECTORY_EVENTS,
    DLQ,
    INBOX_COMMANDS,
    MODERATION_COMMANDS,
    PUBLIC_TOPICS,
    SEND_REQUESTED,
)

from services.common.credentials import BROKER, OPS, UPSTREAM, ensure_credentials, passwords_from_environment, service_principal
from services.common.kafka_client import sasl_identity, settings_of
from services.common.settings import KafkaSettings
from services.registry import SERVICES, runtime_factory

SCRAM_ITERATIONS = 8192
SUPER_USERS = (BROKER, OPS)
UPSTREAM_WRITES = (SEND_REQUESTED, BULK_REQUESTED, MODERATION_COMMANDS, INBOX_COMMANDS, COLLABORATION_COMMANDS, DIRECTORY_EVENTS)
UPSTREAM_GROUPS = "im-upstream"  # upstream's consumer groups start with this
DEFAULT_GROUP_PREFIX = "im"


@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW ACL: `principal` may `operation` the `resource` ("topic" or
    "group") named `name` (`prefixed`: every name starting with it)."""

    principal: str
    resource: str
    name: str
    operation: str
    prefixed: bool = False


@cache
def consumed_topics(service: str) -> tuple[str, ...]:
    """The topics the service's subscribers consume, as its code declares them."""
    runtime = runtime_factory(service)()
    return tuple(sorted({topic.name for sub in runtime.broker.subscribers for topic in sub.topics}))


def group_grants(prefix: str) -> list[Grant]:
    """Each service reads with the consumer groups of `prefix`: `<prefix>.<service>` and `<prefix>.<service>.*`."""
    grants = []
    for service in SERVICES:
        base = f"{prefix}.{service}"
        grants += [Grant(service_principal(service), "group", base, "READ"), Grant(service_principal(service), "group", f"{base}.", "READ", True)]
    return grants


def grants(group_prefixes: Iterable[str] = (DEFAULT_GROUP_PREFIX,)) -> list[Grant]:
    """Every ACL of the suite (the super users need none)."""
    found: set[Grant] = set()
    for service, spec in SERVICES.items():
        principal = service_principal(service)
        found |= {Grant(principal, "topic", topic, "READ") for topic in consumed_topics(service)}
        found |= {Grant(principal, "topic", topic, "WRITE") for topic in (*spec.produces, DLQ)}
    found |= {Grant(UPSTREAM, "topic", topic, "WRITE") for topic in UPSTREAM_WRITES}
    found |= {Grant(UPSTREAM, "topic", topic, "READ") for topic in PUBLIC_TOPICS}
    found.add(Grant(UPSTREAM, "group", UPSTREAM_GROUPS, "READ", True))
    for prefix in group_prefixes:
        found |= set(group_grants(prefix))
    return sorted(found)


# --- provisioning (as im-ops) ----------------------------------------------------------


def admin_client(settings: KafkaSettings) -> AdminClient:
    protocol, mechanism, username, password = sasl_identity(settings)
    config = {"bootstrap.servers": settings.kafka_bootstrap_servers, "security.protocol": protocol}
    if protocol.startswith("SASL"):
        config.update({"sasl.mechanism": mechanism, "sasl.username": username, "sasl.password": password})
    if protocol.endswith("SSL") and settings.kafka_ssl_cafile:
        config["ssl.ca.location"] = str(settings.kafka_ssl_cafile)
    return AdminClient(config)


def _wait(admin: AdminClient, futures: dict, timeout: float = 30) -> None:  # type: ignore[type-arg]
    """Wait for an admin request's results (the client must live until then)."""
    for future in futures.values():
        future.result(timeout)
    admin.poll(0)


def create_acls(settings: KafkaSettings, wanted: Iterable[Grant]) -> int:
    """Create the ACLs (creating one that exists changes nothing); returns how many were asked for."""
    bindings = [
        AclBinding(
            ResourceType[grant.resource.upper()],
            grant.name,
            ResourcePatternType.PREFIXED if grant.prefixed else ResourcePatternType.LITERAL,
            f"User:{grant.principal}",
            "*",
            AclOperation[grant.operation],
            AclPermissionType.ALLOW,
        )
        for grant in wanted
    ]
    if bindings:
        admin = admin_client(settings)
        _wait(admin, admin.create_acls(bindings))
    return len(bindings)


def upsert_scram(settings: KafkaSettings, passwords: dict[str, str]) -> None:
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upserts = [UserScramCredentialUpsertion(user, info, password.encode()) for user, password in passwords.items()]
    admin = admin_client(settings)
    _wait(admin, admin.alter_user_scram_credentials(upserts))


def grant_group_prefix(settings: KafkaSettings, prefix: str) -> None:
    """Let every service read with the consumer groups of `prefix` (test and bench runs)."""
    create_acls(settings, group_grants(prefix))


def provision(settings: KafkaSettings, passwords: dict[str, str], group_prefixes: Iterable[str] = (DEFAULT_GROUP_PREFIX,), timeout: float = 90) -> str:
    """Every principal's SCRAM credential and every ACL, as the super user of
    `settings`; idempotent. Retried while a broker that just opened its port is
    still loading its metadata."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            upsert_scram(settings, passwords)
            count = create_acls(settings, grants(group_prefixes))
            return f"kafka security: {len(passwords)} principals, {count} ACLs"
        except (KafkaException, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise
            print(f"broker not ready for provisioning yet ({exc}); retrying", file=sys.stderr)
            time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path, nargs="?", help="the principals' .properties (default: passwords from KAFKA_PASSWORD_*, as im-ops per KAFKA_SASL_*)")
    parser.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    parser.add_argument("--group-prefix", action="append", default=None)
    args = parser.parse_args()
    prefixes = args.group_prefix or (DEFAULT_GROUP_PREFIX,)
    if args.directory is None:
        ops, passwords = KafkaSettings(kafka_bootstrap_servers=args.bootstrap_servers), passwords_from_environment()
    else:
        ops = settings_of(OPS, args.bootstrap_servers, args.directory)
        passwords = {p: w for p, w in ensure_credentials(args.directory).items() if p != BROKER}
    print(provision(ops, passwords, prefixes))


if __name__ == "__main__":
    main()
