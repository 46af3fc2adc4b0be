"""Moderation wiring."""

from pathlib import Path

from services.common.idempotency import DecisionStore
from services.common.runtime import ServiceRuntime
from services.common.settings import ServiceSettings
from services.moderation import api, handlers
from services.moderation.follower import SubjectFollower
from services.moderation.policy import ContentPolicyFile
from services.moderation.store import ModerationStore


class ModerationSettings(ServiceSettings):
    service_name: str = "moderation"
    http_port: int = 8102
    # Content rules (R14): edited in place, picked up within the check interval.
    content_rules_path: Path = Path(__file__).with_name("content-rules.yaml")
    content_rules_check_seconds: float = 1.0


def create_runtime(**overrides: object) -> ServiceRuntime:
    settings = ModerationSettings(**overrides)
    runtime = ServiceRuntime(settings)
    store = ModerationStore(runtime.db)
    command_decisions = DecisionStore(runtime.db["command_decisions"])
    policy = ContentPolicyFile(settings.content_rules_path, check_interval=settings.content_rules_check_seconds)
    runtime.on_startup(store.ensure_indexes)
    runtime.on_startup(command_decisions.ensure_indexes)
    follower = SubjectFollower(runtime, store)
    runtime.alongside(follower.start, follower.stop)
    handlers.register(runtime, store, follower, command_decisions, policy)
    runtime.serve(api.router(store))
    return runtime
