from services.common.runtime import run_service
from services.quota.app import create_runtime

run_service(create_runtime)
