from services.common.runtime import run_service
from services.inbox_projection.app import create_runtime

run_service(create_runtime)
