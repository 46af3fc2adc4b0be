"""Quota wiring."""

from pathlib import Path

import yaml
from pydantic import Field

from services.common.runtime import ServiceRuntime
from services.common.settings import ServiceSettings
from services.quota import api, handlers
from services.quota.admission import DEFAULT_OWNED_ENTRIES, Admission
from services.quota.domain import QuotaPolicy
from services.quota.owned import Owned
from services.quota.store import QuotaStore

DEFAULT_POLICY_PATH = Path(__file__).with_name("policy.yaml")


class QuotaSettings(ServiceSettings):
    service_name: str = "quota"
    http_port: int = 8103
    # The outreach policy file (tiers, starter pack, reply cap, week); env IM_QUOTA_POLICY_PATH.
    quota_policy_path: Path = DEFAULT_POLICY_PATH
    # Documents per collection that admission keeps in memory for the sellers it owns
    # (least recently used dropped first); env IM_QUOTA_OWNED_ENTRIES.
    quota_owned_entries: int = Field(DEFAULT_OWNED_ENTRIES, ge=0)


def load_policy(path: Path) -> QuotaPolicy:
    with path.open(encoding="utf-8") as file:
        return QuotaPolicy.model_validate(yaml.safe_load(file))


def create_runtime(**overrides: object) -> ServiceRuntime:
    settings = QuotaSettings(**overrides)
    runtime = ServiceRuntime(settings)
    store = QuotaStore(runtime.db)
    admission = Admission(store, load_policy(settings.quota_policy_path), Owned(settings.quota_owned_entries))
    runtime.on_startup(store.ensure_indexes)
    handlers.register(runtime, store, admission)
    runtime.serve(api.router(runtime, admission))
    return runtime
