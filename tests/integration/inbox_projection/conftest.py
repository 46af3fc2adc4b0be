import pytest

from services.inbox_projection.store import InboxStore
from tests.harness import Suite, unique


@pytest.fixture
async def fresh_db(suite: Suite):
    """An inbox database of the test's own, dropped afterwards."""
    mongo = suite.runtimes["inbox-projection"].mongo
    db = mongo[unique("inbox").replace("-", "_")]
    await InboxStore(db).ensure_indexes()
    try:
        yield db
    finally:
        await mongo.drop_database(db.name)
