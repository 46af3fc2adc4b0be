"""Every service counts its database commands and their round trips in /metrics
(services.common.mongo.CommandMetrics), by command and collection."""

import pytest
from prometheus_client import generate_latest

from tests.harness import Suite, unique

pytestmark = pytest.mark.integration


def command_samples(text: str, command: str, collection: str) -> dict[str, float]:
    labels = f'{{collection="{collection}",command="{command}"}}'
    return {
        name: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        for name in ("im_database_commands_total", "im_database_command_seconds_total")
        if line.startswith(name + labels)
    }


async def test_each_command_is_counted_with_its_round_trip(suite: Suite) -> None:
    runtime = suite.runtimes["quota"]
    collection = unique("probe").replace("-", "_")
    for _ in range(3):
        await runtime.db[collection].find_one({"_id": "nothing"})
    await runtime.db[collection].insert_one({"_id": "one"})
    await runtime.db.drop_collection(collection)

    text = generate_latest(runtime.metrics.registry).decode()
    finds, inserts = command_samples(text, "find", collection), command_samples(text, "insert", collection)
    assert finds["im_database_commands_total"] == 3 and finds["im_database_command_seconds_total"] > 0
    assert inserts["im_database_commands_total"] == 1
