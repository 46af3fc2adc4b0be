"""How every Kafka client of the suite connects and authenticates (DESIGN §8):
the services, the tests, the bench, the chaos tooling and the CLIs all build
their clients' options here, from ``KafkaSettings``.

    client_options(settings)        aiokafka keyword arguments (bootstrap servers included)
    broker_security(settings)       the same for FastStream's KafkaBroker
    settings_of(principal, ...)     a tool's settings as one principal of a local instance
    partitions_of(settings, topics) every partition of the topics
"""

import ssl
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLScram512

from services.common.credentials import properties_path, read_client_properties, sasl_login
from services.common.settings import KafkaSettings

def sasl_identity(settings: KafkaSettings) -> tuple[str, str | None, str | None, str | None]:
    """(security protocol, SASL mechanism, username, password)."""
    if settings.kafka_client_properties is None:
        password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None
        return settings.kafka_security_protocol, settings.kafka_sasl_mechanism, settings.kafka_sasl_username, password
    properties = read_client_properties(settings.kafka_client_properties)
    username, password = sasl_login(properties) or (None, None)
    return properties.get("security.protocol", "PLAINTEXT"), properties.get("sasl.mechanism"), username, password


def _ssl_context(settings: KafkaSettings, protocol: str) -> ssl.SSLContext | None:
    if not protocol.endswith("SSL"):
        return None
    return create_ssl_context(cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None)


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
    protocol, mechanism, username, password = sasl_identity(settings)
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap_servers, "security_protocol": protocol}
    if protocol.startswith("SASL"):
        options.update(sasl_mechanism=mechanism, sasl_plain_username=username, sasl_plain_password=password)
    if (context := _ssl_context(settings, protocol)) is not None:
        options["ssl_context"] = context
    return options


def broker_security(settings: KafkaSettings) -> BaseSecurity | None:
    """FastStream's form of the same options (KafkaBroker(security=...))."""
    protocol, _, username, password = sasl_identity(settings)
    context = _ssl_context(settings, protocol)
    if protocol.startswith("SASL"):
        return SASLScram512(username or "", password or "", ssl_context=context, use_ssl=context is not None)
    return BaseSecurity(ssl_context=context, use_ssl=True) if context is not None else None


def settings_of(principal: str, bootstrap_servers: str, directory: Path | None) -> KafkaSettings:
    """Client settings of a tool connecting as `principal` with the credentials in
    `directory` (None: a broker without SASL, as testcontainers' is)."""
    properties = properties_path(directory, principal) if directory is not None else None
    return KafkaSettings(kafka_bootstrap_servers=bootstrap_servers, kafka_client_properties=properties)


async def partitions_of(kafka: KafkaSettings, *topics: str) -> list[TopicPartition]:
    """Every partition of the topics, in order (a topic that does not exist has none)."""
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return sorted(TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"])
