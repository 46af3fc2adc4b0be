from services.common.runtime import run_service
from services.collaboration_card.app import create_runtime

run_service(create_runtime)
