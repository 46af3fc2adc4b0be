"""Creates every contract topic with the same partition count (idempotent).

    python -m services.common.topics [--bootstrap-servers HOST:PORT] [--partitions 6]

It connects as the principal of KAFKA_CLIENT_PROPERTIES (im-ops: creating topics needs a super user).
"""

import argparse
import asyncio
import os

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError

from im_contracts.topics import ALL_TOPICS

from services.common.kafka_client import client_options
from services.common.settings import KafkaSettings

DLQ_MAX_MESSAGE_BYTES = str(4 * 1024 * 1024)


async def ensure_topics(kafka: KafkaSettings, partitions: int = 6, timeout: float = 60.0) -> list[str]:
    """Create missing topics; return the names created."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        admin = AIOKafkaAdminClient(**client_options(kafka))
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            await admin.close()
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(1)
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in ALL_TOPICS if t not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        name=t,
                        num_partitions=partitions,
                        replication_factor=1,
                        topic_configs={"max.message.bytes": DLQ_MAX_MESSAGE_BYTES},
                    )
                    for t in missing
                ]
            )
        return missing
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    parser.add_argument("--partitions", type=int, default=int(os.environ.get("IM_TOPIC_PARTITIONS", "6")))
    args = parser.parse_args()
    created = asyncio.run(ensure_topics(KafkaSettings(kafka_bootstrap_servers=args.bootstrap_servers), args.partitions))
    print(f"topics: {len(ALL_TOPICS)} present, {len(created)} created ({', '.join(created) or 'none'})")


if __name__ == "__main__":
    main()
