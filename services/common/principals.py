"""Who may write what on Kafka (DESIGN §8): the principals, their ACLs, and
their SCRAM credentials.

Every service is its own principal, ``im-<service>``, allowed to read the
topics its subscribers consume (read from the code) with its own consumer
groups, and to write the topics it produces (``services.registry``) and
``im.dlq``. ``im-upstream`` writes the command topics and directory events and
reads every public topic; ``im-ops`` is a super user for tooling, like the
broker's own ``im-broker``.

    python -m services.common.principals credentials DIR
        one random password per principal, in DIR/<principal>.properties (kept if present)
    python -m services.common.principals scram-args DIR
        the `kafka-storage format --add-scram` arguments for them, one per line
    python -m services.common.principals password DIR PRINCIPAL
    python -m services.common.principals provision --bootstrap-servers HOST:PORT [DIR] [--group-prefix im ...]
        as im-ops: SCRAM credentials of every principal in DIR and every ACL (idempotent);
        without DIR (docker-compose) the passwords come from KAFKA_PASSWORD_<NAME>
    python -m services.common.principals compose-env
        a docker-compose .env with fresh passwords (see README)

Consumer groups are ``<group prefix>.<service>[.<purpose>]``. The ACLs name
the groups of the prefixes a deployment uses: ``im`` by default, and the fresh
prefixes of test and bench runs, granted by their tooling (``grant_group_prefix``).
"""

import argparse
import os
import secrets
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

from services.common.kafka_client import credentials
from services.common.settings import KafkaSettings
from services.registry import SERVICES, runtime_factory

BROKER = "im-broker"
OPS = "im-ops"
UPSTREAM = "im-upstream"
MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 8192
SUPER_USERS = (BROKER, OPS)
UPSTREAM_WRITES = (SEND_REQUESTED, BULK_REQUESTED, MODERATION_COMMANDS, INBOX_COMMANDS, COLLABORATION_COMMANDS, DIRECTORY_EVENTS)
UPSTREAM_GROUPS = "im-upstream"  # upstream's consumer groups start with this
DEFAULT_GROUP_PREFIX = "im"


def service_principal(service: str) -> str:
    return f"im-{service}"


PRINCIPALS = (*(service_principal(s) for s in SERVICES), UPSTREAM, OPS)


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


# --- credentials ------------------------------------------------------------------


def properties_path(directory: Path, principal: str) -> Path:
    return directory / f"{principal}.properties"


def client_properties(principal: str, password: str, protocol: str = "SASL_PLAINTEXT") -> str:
    return (
        f"# Kafka client settings of principal {principal} (generated; keep private)\n"
        f"security.protocol={protocol}\n"
        f"sasl.mechanism={MECHANISM}\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{principal}" password="{password}";\n'
    )


def settings_of(principal: str, bootstrap_servers: str, directory: Path | None) -> KafkaSettings:
    """Client settings of a tool connecting as `principal` with the credentials in
    `directory` (None: a broker without SASL, as testcontainers' is)."""
    properties = properties_path(directory, principal) if directory is not None else None
    return KafkaSettings(kafka_bootstrap_servers=bootstrap_servers, kafka_client_properties=properties)


def new_password() -> str:
    return secrets.token_urlsafe(24)  # [A-Za-z0-9_-]: safe inside JAAS quotes and .properties


def ensure_credentials(directory: Path) -> dict[str, str]:
    """principal -> password for the broker and every principal, creating the
    missing ones (files readable by their owner only)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    passwords = {}
    for principal in (BROKER, *PRINCIPALS):
        path = properties_path(directory, principal)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(client_properties(principal, new_password()))
        passwords[principal] = password_of(path)
    return passwords


def password_of(path: Path) -> str:
    password = credentials(KafkaSettings(kafka_client_properties=path))[3]
    if not password:
        raise ValueError(f"{path} names no password")
    return password


def scram_args(directory: Path) -> list[str]:
    """`kafka-storage format` arguments that create every principal's SCRAM credential."""
    args = []
    for principal, password in ensure_credentials(directory).items():
        args += ["--add-scram", f"{MECHANISM}=[name={principal},password={password}]"]
    return args


# --- provisioning (as im-ops) ----------------------------------------------------------


def admin_client(settings: KafkaSettings) -> AdminClient:
    protocol, mechanism, username, password = credentials(settings)
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


def compose_variable(principal: str) -> str:
    return f"KAFKA_PASSWORD_{principal.removeprefix('im-').upper().replace('-', '_')}"


def compose_env() -> str:
    """docker-compose's .env: a fresh password per principal and for the broker's key store."""
    lines = [
        "# docker-compose secrets, made by `python -m services.common.principals compose-env`; never commit",
        f"KAFKA_PRINCIPALS={' '.join((BROKER, *PRINCIPALS))}",
        *(f"{compose_variable(principal)}={new_password()}" for principal in (BROKER, *PRINCIPALS)),
        f"KAFKA_TLS_PASSWORD={new_password()}",
    ]
    return "\n".join(lines) + "\n"


def passwords_from_environment() -> dict[str, str]:
    """compose_env's passwords, as docker-compose hands them to the provisioning container."""
    return {principal: os.environ[compose_variable(principal)] for principal in PRINCIPALS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("credentials", "scram-args", "password"):
        commands.add_parser(name).add_argument("directory", type=Path)
    commands.choices["password"].add_argument("principal")
    provisioning = commands.add_parser("provision")
    provisioning.add_argument("directory", type=Path, nargs="?", help="the principals' .properties (default: passwords from KAFKA_PASSWORD_*, as im-ops per KAFKA_SASL_*)")
    provisioning.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    provisioning.add_argument("--group-prefix", action="append", default=None)
    commands.add_parser("compose-env")
    args = parser.parse_args()
    if args.command == "credentials":
        print(f"{len(ensure_credentials(args.directory))} principals in {args.directory}")
    elif args.command == "scram-args":
        print("\n".join(scram_args(args.directory)))
    elif args.command == "password":
        print(password_of(properties_path(args.directory, args.principal)))
    elif args.command == "provision":
        prefixes = args.group_prefix or (DEFAULT_GROUP_PREFIX,)
        if args.directory is None:
            ops, passwords = KafkaSettings(kafka_bootstrap_servers=args.bootstrap_servers), passwords_from_environment()
        else:
            ops = settings_of(OPS, args.bootstrap_servers, args.directory)
            passwords = {p: w for p, w in ensure_credentials(args.directory).items() if p != BROKER}
        print(provision(ops, passwords, prefixes))
    else:
        sys.stdout.write(compose_env())


if __name__ == "__main__":
    main()
