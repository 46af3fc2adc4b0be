"""DESIGN §8 on the real broker: only authenticated clients get in, and each
principal writes and reads only what its ACLs give it."""

import asyncio
import os
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from im_contracts.topics import ALL_TOPICS, MODERATION_EVENTS, SEND_ADMITTED, SEND_DELIVERED, SEND_REQUESTED
from services.common.credentials import OPS, UPSTREAM, service_principal
from services.common.kafka_client import client_options
from services.common.settings import KafkaSettings
from tests.harness import Suite, unique

REFUSED_WITHIN = 20.0  # seconds; a refusal is an error well before this


@pytest.fixture(autouse=True)
def _needs_sasl(suite: Suite) -> None:
    if suite.kafka_credentials is None:
        pytest.skip("this Kafka has no SASL (testcontainers); the native one has")


async def produce(kafka: KafkaSettings | dict[str, Any], topic: str) -> None:
    options = client_options(kafka) if isinstance(kafka, KafkaSettings) else kafka
    producer = AIOKafkaProducer(**options, acks="all", request_timeout_ms=10_000)
    try:
        await asyncio.wait_for(producer.start(), REFUSED_WITHIN)
        await asyncio.wait_for(producer.send_and_wait(topic, b'{"probe": true}', key=b"probe"), REFUSED_WITHIN)
    finally:
        await producer.stop()


async def consume_one(kafka: KafkaSettings, topic: str, group: str) -> None:
    consumer = AIOKafkaConsumer(topic, **client_options(kafka), group_id=group, auto_offset_reset="earliest")
    try:
        await asyncio.wait_for(consumer.start(), REFUSED_WITHIN)
        await asyncio.wait_for(consumer.getone(), REFUSED_WITHIN)
    finally:
        await consumer.stop()


async def refused(attempt: Any) -> BaseException:
    with pytest.raises((KafkaError, TimeoutError)) as caught:
        await attempt
    return caught.value


async def test_a_service_principal_cannot_write_a_topic_it_does_not_own(suite: Suite) -> None:
    error = await refused(produce(suite.kafka_as(service_principal("quota")), SEND_DELIVERED))
    assert "Authorization" in type(error).__name__, repr(error)
    await produce(suite.kafka_as(service_principal("quota")), SEND_ADMITTED)  # its own topic


async def test_upstream_writes_commands_but_not_the_pipeline(suite: Suite) -> None:
    error = await refused(produce(suite.kafka_as(UPSTREAM), SEND_ADMITTED))
    assert "Authorization" in type(error).__name__, repr(error)
    await produce(suite.kafka_as(UPSTREAM), SEND_REQUESTED)


async def test_a_service_reads_only_its_topics_with_its_groups(suite: Suite) -> None:
    quota = suite.kafka_as(service_principal("quota"))
    error = await refused(consume_one(quota, SEND_ADMITTED, f"{suite.prefix}.quota.probe"))  # messaging's input
    assert "Authorization" in type(error).__name__, repr(error)
    error = await refused(consume_one(quota, MODERATION_EVENTS, f"{suite.prefix}.messaging.probe"))  # another's group
    assert "Authorization" in type(error).__name__, repr(error)


async def test_an_unauthenticated_client_is_refused(suite: Suite) -> None:
    plaintext = {"bootstrap_servers": suite.kafka, "security_protocol": "PLAINTEXT"}
    for topic in (SEND_REQUESTED, SEND_DELIVERED):
        await refused(produce(plaintext, topic))

    wrong_password = {**client_options(suite.kafka_as(OPS)), "sasl_plain_password": "not-the-password"}
    await refused(produce(wrong_password, SEND_REQUESTED))

    async def list_topics(options: dict[str, Any]) -> list[str]:
        admin = AIOKafkaAdminClient(**options, request_timeout_ms=5_000)
        try:
            await asyncio.wait_for(admin.start(), REFUSED_WITHIN)
            return await asyncio.wait_for(admin.list_topics(), REFUSED_WITHIN)
        finally:
            await admin.close()

    await refused(list_topics({"bootstrap_servers": suite.kafka, "security_protocol": "PLAINTEXT"}))
    assert set(ALL_TOPICS) <= set(await list_topics(client_options(suite.kafka_as(OPS))))


async def test_the_controller_listener_takes_no_client(suite: Suite) -> None:
    """Clients cannot reach the controller: it speaks SASL/PLAIN with the broker's own principal only."""
    host, port = suite.kafka.rsplit(":", 1)
    controller = f"{host}:{os.environ.get('KAFKA_CONTROLLER_PORT') or int(port) + 1}"  # deploy/local's default: next to KAFKA_PORT
    ops_there = {**client_options(suite.kafka_as(OPS)), "bootstrap_servers": controller}
    await refused(produce(ops_there, unique("im.none")))
    await refused(produce({"bootstrap_servers": controller, "security_protocol": "PLAINTEXT"}, SEND_REQUESTED))
