#!/usr/bin/env bash
# Native local infrastructure (no Docker engine needed): Apache Kafka in KRaft
# mode and mongo-java-server (H2 backend, deploy/local/MongoLauncher.java) on
# loopback, one set per SCIM_INSTANCE.
#   infra.sh start|stop|status|clean|env
#   infra.sh restart-kafka|stop-kafka|start-kafka|restart-mongo|stop-mongo|start-mongo|kill-mongo
#     (one daemon at a time: the fault tests in tests/chaos take these away mid-run)
# Daemons write only to $DATA_DIR/logs and detach from the terminal.
set -euo pipefail
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/kafka-security.sh"

KAFKA_PID="$RUN_DIR/kafka.pid"
MONGO_PID="$RUN_DIR/mongo.pid"

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

start_mongo() {
  if pid_alive "$MONGO_PID"; then log "mongo already running (pid $(cat "$MONGO_PID"))"; return 0; fi
  [ -f "$MONGO_CLASSES_DIR/MongoLauncher.class" ] || die "database launcher missing: run deploy/local/bootstrap.sh"
  mkdir -p "$DATA_DIR/mongo"
  log "starting mongo-java-server $MONGO_JAVA_SERVER_VERSION on 127.0.0.1:$MONGO_PORT (log: $LOG_DIR/mongo.log)"
  # The parallel collector on a heap sized once: under bench.profile's 50/s mix it
  # stalled the engine 1.3-1.8 s per 2-minute run with no full collection, where
  # the serial one on a growing heap stalled it 4.4-4.6 s in 165 young collections
  # plus 0.5 s in full ones (~150 ms each), and answers came slower (bench/PROFILE.md).
  # The page cache (mvstore.cacheMiB, H2's default 16) holds the pages last read or
  # written, as objects: at 16 MiB most pages the bench's 100/s mix touched were read
  # from the file again, 63 % of the engine's CPU in JFR samples (bench/PROFILE.md).
  MONGO_HEAP=${MONGO_HEAP:--Xms2g -Xmx2g -XX:+UseParallelGC -Dmvstore.cacheMiB=768}
  # shellcheck disable=SC2086
  setsid nohup java $MONGO_HEAP -Djava.awt.headless=true \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -Dorg.slf4j.simpleLogger.showDateTime=true \
    -cp "$MONGO_LIB_DIR/*:$MONGO_CLASSES_DIR" MongoLauncher 127.0.0.1 "$MONGO_PORT" "$DATA_DIR/mongo/data.mv.db" \
    >>"$LOG_DIR/mongo.log" 2>&1 </dev/null &
  echo $! > "$MONGO_PID"
  wait_for_port "$MONGO_PORT" 60 mongo "$LOG_DIR/mongo.log"
}

kill_mongo() {  # SIGKILL, no clean close: acknowledged writes must still be in the file (fault tests)
  pid_alive "$MONGO_PID" || die "mongo is not running"
  log "killing mongo (pid $(cat "$MONGO_PID"))"
  kill -KILL "$(cat "$MONGO_PID")"
  while pid_alive "$MONGO_PID"; do sleep 0.1; done
  rm -f "$MONGO_PID"
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
  start) start_mongo; start_kafka ;;
  stop) stop_pid "$KAFKA_PID" kafka; stop_pid "$MONGO_PID" mongo ;;
  restart-kafka) stop_pid "$KAFKA_PID" kafka; start_kafka ;;
  stop-kafka) stop_pid "$KAFKA_PID" kafka ;;
  start-kafka) start_kafka ;;
  restart-mongo) stop_pid "$MONGO_PID" mongo; start_mongo ;;
  stop-mongo) stop_pid "$MONGO_PID" mongo ;;
  start-mongo) start_mongo ;;
  kill-mongo) kill_mongo ;;
  status)
    [ -z "${KAFKA_PORT:-}" ] || status_of "$KAFKA_PID" kafka "127.0.0.1:$KAFKA_PORT"
    status_of "$MONGO_PID" mongo "127.0.0.1:$MONGO_PORT" ;;
  clean)
    stop_pid "$KAFKA_PID" kafka; stop_pid "$MONGO_PID" mongo
    rm -rf "$DATA_DIR"; log "removed $DATA_DIR" ;;
  env)
    if [ -n "${KAFKA_PORT:-}" ]; then  # the "engine" instance is a database alone
      echo "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT"
      echo "KAFKA_CREDENTIALS_DIR=$KAFKA_SECRETS_DIR"
    fi
    echo "MONGODB_URI=mongodb://127.0.0.1:$MONGO_PORT/" ;;
  *) echo "usage: $0 start|stop|status|clean|env|restart-kafka|stop-kafka|start-kafka|restart-mongo|stop-mongo|start-mongo|kill-mongo" >&2; exit 2 ;;
esac
