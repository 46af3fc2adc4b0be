"""Quota wiring."""

from pathlib import Path

import yaml

from services.common.runtime import ServiceRuntime
from services.common.settings import ServiceSettings
from services.quota import api, handlers
from services.quota.admission import Admission
from services.quota.domain import QuotaPolicy
from services.quota.store import QuotaStore

DEFAULT_POLICY_PATH = Path(__file__).with_name("policy.yaml")


class QuotaSettings(ServiceSettings):
    service_name: str = "quota"
    http_port: int = 8103
    # The outreach policy file (tiers, starter pack, reply cap, week); env IM_QUOTA_POLICY_PATH.
    quota_policy_path: Path = DEFAULT_POLICY_PATH


def load_policy(path: Path) -> QuotaPolicy:
    with path.open(encoding="utf-8") as file:
        return QuotaPolicy.model_validate(yaml.safe_load(file))


def create_runtime(**overrides: object) -> ServiceRuntime:
    settings = QuotaSettings(**overrides)
    runtime = ServiceRuntime(settings)
    store = QuotaStore(runtime.db)
    admission = Admission(store, load_policy(settings.quota_policy_path))
    runtime.on_startup(store.ensure_indexes)
    handlers.register(runtime, store, admission)
    runtime.serve(api.router(runtime, admission))
    return runtime
