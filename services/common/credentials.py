"""The Kafka principals' names and passwords (DESIGN §8), kept light: this is
what deploy/local runs before the broker starts, so it imports no client.

    python -m services.common.credentials init DIR          one random password per principal (kept if present)
    python -m services.common.credentials scram-args DIR    `kafka-storage format --add-scram` arguments, one per line
    python -m services.common.credentials compose-env       a docker-compose .env with fresh passwords (see README)

Each principal's file is DIR/<principal>.properties in Kafka's client-properties
format (``security.protocol``, ``sasl.mechanism``, ``sasl.jaas.config``), readable
by its owner only, so Kafka's own tools take it as ``--command-config`` too.
"""

import argparse
import os
import re
import secrets
import sys
from pathlib import Path

from services.registry import SERVICES

BROKER = "im-broker"
OPS = "im-ops"
UPSTREAM = "im-upstream"
MECHANISM = "SCRAM-SHA-512"


def service_principal(service: str) -> str:
    return f"im-{service}"


PRINCIPALS = (*(service_principal(s) for s in SERVICES), UPSTREAM, OPS)
_JAAS = re.compile(r'username="(?P<username>[^"]*)"\s+password="(?P<password>[^"]*)"')


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


def read_client_properties(path: Path) -> dict[str, str]:
    """A Kafka client-properties file (``key=value`` lines, ``#`` comments)."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def sasl_login(properties: dict[str, str]) -> tuple[str, str] | None:
    """(username, password) of a ``sasl.jaas.config`` line."""
    found = _JAAS.search(properties.get("sasl.jaas.config", ""))
    return (found["username"], found["password"]) if found else None


def password_of(path: Path) -> str:
    login = sasl_login(read_client_properties(path))
    if login is None:
        raise ValueError(f"{path} names no password")
    return login[1]


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


def scram_args(directory: Path) -> list[str]:
    """`kafka-storage format` arguments that create every principal's SCRAM credential."""
    args = []
    for principal, password in ensure_credentials(directory).items():
        args += ["--add-scram", f"{MECHANISM}=[name={principal},password={password}]"]
    return args


def compose_variable(principal: str) -> str:
    return f"KAFKA_PASSWORD_{principal.removeprefix('im-').upper().replace('-', '_')}"


def compose_env() -> str:
    """docker-compose's .env: a fresh password per principal and for the broker's key store."""
    lines = [
        "# docker-compose secrets, made by `python -m services.common.credentials compose-env`; never commit",
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
    for name in ("init", "scram-args"):
        commands.add_parser(name).add_argument("directory", type=Path)
    commands.add_parser("compose-env")
    args = parser.parse_args()
    if args.command == "init":
        print(f"{len(ensure_credentials(args.directory))} principals in {args.directory}")
    elif args.command == "scram-args":
        print("\n".join(scram_args(args.directory)))
    else:
        sys.stdout.write(compose_env())


if __name__ == "__main__":
    main()
