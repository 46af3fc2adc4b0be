"""Outgoing Kafka records and the publisher that sends them.

A record is serialised once, when a decision is made, and stored with the
decision; a redelivered command republishes the very same bytes (I1, I2).
"""

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.state import RealProducer

from im_contracts import ContractModel, kafka_key
from im_contracts.keys import CORRELATION_ID_HEADER

JSON_HEADERS = {"content-type": "application/json"}
# The same header in the producer's own form.
CONTENT_TYPE_HEADER = ("content-type", JSON_HEADERS["content-type"].encode())


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes
    value: bytes

    @classmethod
    def of(cls, topic: str, message: ContractModel) -> "Outgoing":
        return cls(topic=topic, key=kafka_key(message), value=message.model_dump_json().encode())

    def to_document(self) -> dict[str, Any]:
        return {"topic": self.topic, "key": self.key, "value": self.value}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "Outgoing":
        return cls(topic=doc["topic"], key=bytes(doc["key"]), value=bytes(doc["value"]))


class Publisher:
    """Publishes with acks=all on an idempotent producer; returns once durable."""

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def send(self, records: Iterable[Outgoing], correlation_id: str | None = None) -> None:
        """Hand every record to the producer, then wait for all their acks: one
        round trip for a decision's records, in order within each partition."""
        await self.send_each((record, correlation_id) for record in records)

    async def send_each(self, records: Iterable[tuple[Outgoing, str | None]]) -> None:
        """`send` for records of several commands (a batch), each with its correlation id."""
        producer = self._aiokafka_producer()
        if producer is None:  # FastStream's in-memory test broker: it delivers at once
            for record, correlation_id in records:
                await self._broker.publish(
                    record.value, topic=record.topic, key=record.key, headers=JSON_HEADERS,
                    correlation_id=correlation_id,
                )
            return
        # Straight to aiokafka: FastStream's publish path (middlewares, command
        # objects, codec) cost about as much CPU per record as the send itself.
        acks = [
            await producer.send(
                record.topic, record.value, key=record.key,
                headers=[CONTENT_TYPE_HEADER, (CORRELATION_ID_HEADER, correlation_id.encode())]
                if correlation_id else [CONTENT_TYPE_HEADER],
            )
            for record, correlation_id in records
        ]
        await asyncio.gather(*acks)

    def _aiokafka_producer(self) -> AIOKafkaProducer | None:
        state = getattr(self._broker.config.producer, "_producer", None)
        return state.producer if isinstance(state, RealProducer) else None

    async def publish(
        self, topic: str, message: ContractModel, correlation_id: str | None = None
    ) -> None:
        await self.send([Outgoing.of(topic, message)], correlation_id)
