"""/readyz's database check says what is wrong in words an operator can act on."""

from services.common.runtime import ServiceRuntime
from services.common.settings import ServiceSettings


async def test_readiness_names_a_silent_database() -> None:
    runtime = ServiceRuntime(ServiceSettings(service_name="unit", mongodb_uri="mongodb://127.0.0.1:9/"))
    try:
        checks = await runtime.readiness()
    finally:
        await runtime.mongo.close()
    assert checks["mongodb"] == {"ok": False, "error": "the database did not answer a ping within 2 s"}
