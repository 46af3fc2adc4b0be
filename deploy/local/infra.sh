#!/usr/bin/env bash
# Native local infrastructure (no Docker engine needed): Apache Kafka in KRaft
# mode and FerretDB (SQLite backend) on loopback, one set per SCIM_INSTANCE.
#   infra.sh start|stop|status|clean|env
#   infra.sh restart-kafka|restart-ferretdb|stop-kafka|start-kafka|stop-ferretdb|start-ferretdb
#     (one daemon at a time: the fault tests in tests/chaos take these away mid-run)
# Daemons write only to $DATA_DIR/logs and detach from the terminal.
set -euo pipefail
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/kafka-security.sh"

KAFKA_PID="$RUN_DIR/kafka.pid"
FERRETDB_PID="$RUN_DIR/ferretdb.pid"

kafka_properties() {
  cat <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
$(kafka_security_properties)
num.partitions=6
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
group.initial.rebalance.delay.ms=0
message.max.bytes=2097152
log.retention.hours=168
PROPS
}

start_kafka() {
  if pid_alive "$KAFKA_PID"; then log "kafka already running (pid $(cat "$KAFKA_PID"))"; return 0; fi
  [ -f "$KAFKA_LIB_DIR/kafka_2.13-$KAFKA_VERSION.jar" ] || die "Kafka jars missing: run deploy/local/bootstrap.sh"
  kafka_security_migrate
  install -m 600 /dev/null "$RUN_DIR/server.properties"  # it holds the broker's password
  kafka_properties > "$RUN_DIR/server.properties"
  if [ ! -f "$KAFKA_LOG_DIR/meta.properties" ]; then
    mkdir -p "$KAFKA_LOG_DIR"
    kafka_format_scram_args
    java -cp "$KAFKA_LIB_DIR/*" -Dlog4j2.configurationFile="$REPO_ROOT/deploy/local/kafka-log4j2.yaml" \
      kafka.tools.StorageTool format --ignore-formatted -c "$RUN_DIR/server.properties" "${SCRAM_ARGS[@]}" \
      --cluster-id="$(python3 -c 'import base64,uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')" \
      >>"$LOG_DIR/kafka-format.log" 2>&1 || die "kafka storage format failed (see $LOG_DIR/kafka-format.log)"
  fi
  log "starting kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (log: $LOG_DIR/kafka.log)"
  KAFKA_HEAP=${KAFKA_HEAP:--Xms256m -Xmx1g}
  # shellcheck disable=SC2086
  setsid nohup java $KAFKA_HEAP -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$REPO_ROOT/deploy/local/kafka-log4j2.yaml" \
    -cp "$KAFKA_LIB_DIR/*" kafka.Kafka "$RUN_DIR/server.properties" \
    >>"$LOG_DIR/kafka.log" 2>&1 </dev/null &
  echo $! > "$KAFKA_PID"
  wait_for_port "$KAFKA_PORT" 90 kafka "$LOG_DIR/kafka.log"
  kafka_security_provision
}

start_ferretdb() {
  if pid_alive "$FERRETDB_PID"; then log "ferretdb already running (pid $(cat "$FERRETDB_PID"))"; return 0; fi
  [ -x "$FERRETDB_BIN" ] || die "FerretDB missing: run deploy/local/bootstrap.sh"
  mkdir -p "$DATA_DIR/ferretdb"
  log "starting ferretdb $FERRETDB_VERSION on 127.0.0.1:$FERRETDB_PORT (log: $LOG_DIR/ferretdb.log)"
  setsid nohup "$FERRETDB_BIN" --handler=sqlite --sqlite-url="file:$DATA_DIR/ferretdb/" \
    --state-dir="$DATA_DIR/ferretdb" --listen-addr="127.0.0.1:$FERRETDB_PORT" \
    --debug-addr="127.0.0.1:$FERRETDB_DEBUG_PORT" --telemetry=disable --log-level=warn \
    >>"$LOG_DIR/ferretdb.log" 2>&1 </dev/null &
  echo $! > "$FERRETDB_PID"
  wait_for_port "$FERRETDB_PORT" 30 ferretdb "$LOG_DIR/ferretdb.log"
}

stop_pid() {  # stop_pid PIDFILE NAME
  local pidfile=$1 name=$2 pid i
  pid_alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  pid=$(cat "$pidfile")
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

status_of() {  # status_of PIDFILE NAME ADDRESS
  if pid_alive "$1"; then echo "$2: running (pid $(cat "$1")) on $3"; else echo "$2: stopped"; fi
}

mkdir -p "$LOG_DIR" "$RUN_DIR"
case "${1:-}" in
  start) start_ferretdb; start_kafka ;;
  stop) stop_pid "$KAFKA_PID" kafka; stop_pid "$FERRETDB_PID" ferretdb ;;
  restart-kafka) stop_pid "$KAFKA_PID" kafka; start_kafka ;;
  restart-ferretdb) stop_pid "$FERRETDB_PID" ferretdb; start_ferretdb ;;
  stop-kafka) stop_pid "$KAFKA_PID" kafka ;;
  start-kafka) start_kafka ;;
  stop-ferretdb) stop_pid "$FERRETDB_PID" ferretdb ;;
  start-ferretdb) start_ferretdb ;;
  status)
    status_of "$KAFKA_PID" kafka "127.0.0.1:$KAFKA_PORT"
    status_of "$FERRETDB_PID" ferretdb "127.0.0.1:$FERRETDB_PORT" ;;
  clean)
    stop_pid "$KAFKA_PID" kafka; stop_pid "$FERRETDB_PID" ferretdb
    rm -rf "$DATA_DIR"; log "removed $DATA_DIR" ;;
  env)
    echo "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT"
    echo "KAFKA_CREDENTIALS_DIR=$KAFKA_SECRETS_DIR"
    echo "MONGODB_URI=mongodb://127.0.0.1:$FERRETDB_PORT/" ;;
  *) echo "usage: $0 start|stop|status|clean|env|restart-kafka|restart-ferretdb|stop-kafka|start-kafka|stop-ferretdb|start-ferretdb" >&2; exit 2 ;;
esac
