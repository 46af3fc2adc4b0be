"""How every Kafka client of the suite connects and authenticates (DESIGN §8):
the services, the tests, the bench, the chaos tooling and the CLIs all build
their clients' options here, from ``KafkaSettings``.

    client_options(settings)        aiokafka keyword arguments (bootstrap servers included)
    broker_security(settings)       the same for FastStream's KafkaBroker
"""

import re
import ssl
from pathlib import Path
from typing import Any

from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLScram512

from services.common.settings import KafkaSettings

_JAAS = re.compile(r'username="(?P<username>[^"]*)"\s+password="(?P<password>[^"]*)"')


def read_client_properties(path: Path) -> dict[str, str]:
    """A Kafka client-properties file (``key=value`` lines, ``#`` comments)."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def credentials(settings: KafkaSettings) -> tuple[str, str | None, str | None, str | None]:
    """(security protocol, SASL mechanism, username, password)."""
    if settings.kafka_client_properties is None:
        password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None
        return settings.kafka_security_protocol, settings.kafka_sasl_mechanism, settings.kafka_sasl_username, password
    properties = read_client_properties(settings.kafka_client_properties)
    jaas = _JAAS.search(properties.get("sasl.jaas.config", ""))
    return (
        properties.get("security.protocol", "PLAINTEXT"),
        properties.get("sasl.mechanism"),
        jaas["username"] if jaas else None,
        jaas["password"] if jaas else None,
    )


def _ssl_context(settings: KafkaSettings, protocol: str) -> ssl.SSLContext | None:
    if not protocol.endswith("SSL"):
        return None
    return create_ssl_context(cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None)


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
    protocol, mechanism, username, password = credentials(settings)
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap_servers, "security_protocol": protocol}
    if protocol.startswith("SASL"):
        options.update(sasl_mechanism=mechanism, sasl_plain_username=username, sasl_plain_password=password)
    if (context := _ssl_context(settings, protocol)) is not None:
        options["ssl_context"] = context
    return options


def broker_security(settings: KafkaSettings) -> BaseSecurity | None:
    """FastStream's form of the same options (KafkaBroker(security=...))."""
    protocol, _, username, password = credentials(settings)
    context = _ssl_context(settings, protocol)
    if protocol.startswith("SASL"):
        return SASLScram512(username or "", password or "", ssl_context=context, use_ssl=context is not None)
    return BaseSecurity(ssl_context=context, use_ssl=True) if context is not None else None

