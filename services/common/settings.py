"""Service settings from the environment (prefix ``IM_``).

``KAFKA_BOOTSTRAP_SERVERS`` (and the other ``KAFKA_*`` client settings) and
``MONGODB_URI`` are also read without the prefix,
because they are what operators and the test harness already export.
"""

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _kafka(name: str) -> AliasChoices:
    return AliasChoices(f"IM_{name}", name)


class KafkaSettings(BaseSettings):
    """Where Kafka is and who this client is (DESIGN §8), for services and tools
    alike; ``services.common.kafka_client`` turns it into client options.

    ``KAFKA_CLIENT_PROPERTIES`` names a principal's file in Kafka's
    client-properties format (what local instances write under
    ``.data/<instance>/kafka/``); its ``security.protocol``, ``sasl.mechanism``
    and ``sasl.jaas.config`` take the place of the four settings below it."""

    model_config = SettingsConfigDict(env_prefix="IM_", extra="ignore")

    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", validation_alias=_kafka("KAFKA_BOOTSTRAP_SERVERS"))
    kafka_client_properties: Path | None = Field(None, validation_alias=_kafka("KAFKA_CLIENT_PROPERTIES"))
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", validation_alias=_kafka("KAFKA_SECURITY_PROTOCOL")
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512"] = Field("SCRAM-SHA-512", validation_alias=_kafka("KAFKA_SASL_MECHANISM"))
    kafka_sasl_username: str | None = Field(None, validation_alias=_kafka("KAFKA_SASL_USERNAME"))
    kafka_sasl_password: SecretStr | None = Field(None, validation_alias=_kafka("KAFKA_SASL_PASSWORD"))
    # The CA that signed the broker's certificate (SASL_SSL); the system's trust store otherwise.
    kafka_ssl_cafile: Path | None = Field(None, validation_alias=_kafka("KAFKA_SSL_CAFILE"))


class ServiceSettings(KafkaSettings):
    service_name: str = "im"
    http_host: str = "127.0.0.1"
    http_port: int = 8100

    mongodb_uri: str = Field(
        "mongodb://127.0.0.1:27017/",
        validation_alias=AliasChoices("IM_MONGODB_URI", "MONGODB_URI"),
    )
    # Each service owns one database, "<prefix>_<service>"; tests use a fresh prefix.
    database_prefix: str = "im"
    # Consumer groups are "<prefix>.<service>"; tests use a fresh prefix.
    group_prefix: str = "im"
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"

    # HTTP reads (DESIGN §7): the JWKS (a file path or an https URL) whose keys
    # sign the callers' tokens, and the issuer those tokens must name. Without a
    # JWKS every /v1 request is refused.
    auth_jwks: str = ""
    auth_issuer: str = "seller-creator-im-local"

    log_level: str = "INFO"
    # Bodies above this are dead-lettered unread (a 1 MiB poison must not be parsed).
    max_message_bytes: int = 512 * 1024
    # Transient failures (broker or database away) are retried with capped backoff.
    retry_initial_backoff_seconds: float = 0.1
    retry_max_backoff_seconds: float = 5.0
    # A record unfinished for longer than this (a handler stuck, a record
    # redelivered again and again) makes /readyz fail, naming it.
    stuck_record_seconds: float = Field(60.0, gt=0)
    producer_linger_ms: int = 1
    # Long enough that a batch outlives a broker restart instead of expiring
    # (an expired batch breaks the idempotent producer's sequence for good).
    kafka_request_timeout_ms: int = 120_000
    # Most records one send-path batch takes from a fetch (services.common.batching).
    batch_max_records: int = Field(500, ge=1, le=10_000)
    # How long a send-path (batch) consumer waits for records of its fetches before
    # looking again (FastStream sleeps as long after finding none): the longest
    # a record waits at a quiet stage.
    pipeline_fetch_wait_ms: int = Field(20, ge=1, le=500)
    # How long the broker holds a send-path consumer's fetch that found nothing
    # (aiokafka's fetch_max_wait_ms, 500 by default). aiokafka sends one fetch per
    # broker at a time and leaves out a partition whose records are still unread
    # 100 ms on (the handler busy with the last batch): that partition's next
    # records wait for the fetch in flight, up to this long.
    pipeline_broker_wait_ms: int = Field(100, ge=1, le=500)
    # A send-path consumer commits the offsets it has handled in the background, at
    # most once per this long: whatever is handled meanwhile rides the next commit.
    pipeline_commit_interval_ms: int = Field(50, ge=0, le=5_000)
    # How often /metrics' im_consumer_lag is refreshed from the consumers' fetch positions.
    lag_refresh_seconds: float = 5.0
    graceful_shutdown_seconds: float = 20.0

    @property
    def database_name(self) -> str:
        return f"{self.database_prefix}_{self.service_name.replace('-', '_')}"

    def group_id(self, purpose: str = "") -> str:
        base = f"{self.group_prefix}.{self.service_name}"
        return f"{base}.{purpose}" if purpose else base
