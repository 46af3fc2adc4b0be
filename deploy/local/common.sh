# Shared paths and versions for the native local infrastructure.
# Sourced by the other scripts; every value can be overridden from the environment.
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KAFKA_VERSION=${KAFKA_VERSION:-4.1.1}
MONGO_JAVA_SERVER_VERSION=${MONGO_JAVA_SERVER_VERSION:-1.47.0}
# Downloads and builds live outside the repo so fresh clones (and CI) reuse them.
SCIM_CACHE=${SCIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/seller-creator-im}
KAFKA_LIB_DIR="$SCIM_CACHE/kafka-$KAFKA_VERSION/lib"
MONGO_LIB_DIR="$SCIM_CACHE/mongo-java-server-$MONGO_JAVA_SERVER_VERSION/lib"
# The compiled launcher is keyed by its source, so an edited launcher is rebuilt.
MONGO_LAUNCHER_SRC="$REPO_ROOT/deploy/local/MongoLauncher.java"
MONGO_CLASSES_DIR="$SCIM_CACHE/mongo-java-server-$MONGO_JAVA_SERVER_VERSION/launcher-$(sha256sum "$MONGO_LAUNCHER_SRC" | cut -c1-12)"
PYTHON_VERSION_TAG=$(python3 -c 'import sys; print(f"py{sys.version_info[0]}{sys.version_info[1]}")')
DEPS_HASH=$(cat "$REPO_ROOT/pyproject.toml" "$REPO_ROOT/contracts/pyproject.toml" | sha256sum | cut -c1-12)
VENV_DIR=${VENV_DIR:-$SCIM_CACHE/venv-$PYTHON_VERSION_TAG-$DEPS_HASH}
PY="$VENV_DIR/bin/python"

# One instance = one Kafka + one MongoDB-wire database (mongo-java-server) with their own ports and data.
# "dev" serves `make run`; "test" serves `make test`, so both can run side by
# side; "chaos" is private to the fault tests (tests/chaos), which restart its
# broker and database and must never disturb the other two; "engine" is a
# database alone that the engine conformance tests (tests/engine) kill and restart.
SCIM_INSTANCE=${SCIM_INSTANCE:-dev}
case "$SCIM_INSTANCE" in
  test)
    KAFKA_PORT=${KAFKA_PORT:-19092}
    KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-19093}
    MONGO_PORT=${MONGO_PORT:-27018} ;;
  engine)  # the database alone, for tests/engine (killed on purpose); ENGINE_MONGO_PORT moves it
    MONGO_PORT=${ENGINE_MONGO_PORT:-27020} ;;
  chaos)
    KAFKA_PORT=${KAFKA_PORT:-29092}
    KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-29093}
    MONGO_PORT=${MONGO_PORT:-27019} ;;
  *)
    KAFKA_PORT=${KAFKA_PORT:-9092}
    KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
    MONGO_PORT=${MONGO_PORT:-27017} ;;
esac
DATA_DIR=${SCIM_DATA:-$REPO_ROOT/.data}/$SCIM_INSTANCE
LOG_DIR="$DATA_DIR/logs"
RUN_DIR="$DATA_DIR/run"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# wait_for_port PORT SECONDS NAME LOGFILE
wait_for_port() {
  local port=$1 seconds=$2 name=$3 logfile=$4 i
  for ((i = 0; i < seconds * 5; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  log "$name did not open port $port within ${seconds}s; last lines of $logfile:"
  tail -n 20 "$logfile" >&2 || true
  return 1
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
