#!/usr/bin/env bash
# The five services under supervisord (restarts a crashed service within a
# second or two), logs in $DATA_DIR/logs/<service>.log. Each connects to Kafka
# as its own principal (im-<service>, credentials from infra.sh).
#   services.sh start|stop|status|restart SERVICE|kill SERVICE|pid SERVICE
# IM_PORT_BASE=N moves the HTTP ports to N+1..N+5 (a second suite beside `make run`).
# IM_REPLICAS=N runs N instances of each send-path service (moderation, quota,
# messaging), sharing their consumer groups: the others are <service>-2.. on
# IM_PORT_BASE + 10 * (n - 1) + the service's own offset (make chaos --replicas 2).
# IM_DATABASE_PREFIX, IM_GROUP_PREFIX, IM_AUTO_OFFSET_RESET and IM_LOG_LEVEL, when
# set, are handed to every service (the fault tests run each suite on fresh ones).
set -euo pipefail
source "$(dirname "$0")/common.sh"

IM_PORT_BASE=${IM_PORT_BASE:-8100}
SERVICES=(
  "messaging:$((IM_PORT_BASE + 1))"
  "moderation:$((IM_PORT_BASE + 2))"
  "quota:$((IM_PORT_BASE + 3))"
  "inbox-projection:$((IM_PORT_BASE + 4))"
  "collaboration-card:$((IM_PORT_BASE + 5))"
)
IM_REPLICAS=${IM_REPLICAS:-1}
[[ $IM_REPLICAS =~ ^[1-9]$ ]] || { echo "IM_REPLICAS must be 1-9 (got '$IM_REPLICAS')" >&2; exit 2; }
REPLICATED=" moderation quota messaging "
CONF="$RUN_DIR/supervisord.conf"
AUTH_DIR="$DATA_DIR/auth"  # the instance's token signing key and JWKS (DESIGN §7)
SOCK="$RUN_DIR/supervisor.sock"
SUPERVISORD="$VENV_DIR/bin/supervisord"
SUPERVISORCTL=("$VENV_DIR/bin/supervisorctl" -c "$CONF")
PASSED_SETTINGS=(IM_DATABASE_PREFIX IM_GROUP_PREFIX IM_AUTO_OFFSET_RESET IM_LOG_LEVEL)

passed_environment() {  # ,NAME="value" for each setting of PASSED_SETTINGS that is set
  local name value
  for name in "${PASSED_SETTINGS[@]}"; do
    value=${!name:-}
    [ -n "$value" ] && printf ',%s="%s"' "$name" "$value"
  done
  return 0
}

check_passed_settings() {  # values land in supervisord's config: keep them plain
  local name value
  for name in "${PASSED_SETTINGS[@]}"; do
    value=${!name:-}
    [ -z "$value" ] || [[ $value =~ ^[A-Za-z0-9_.-]+$ ]] || die "$name must match [A-Za-z0-9_.-]+ (got '$value')"
  done
}

programs() {  # "PROGRAM PORT SERVICE" per supervised process
  local entry name port n
  for entry in "${SERVICES[@]}"; do
    name=${entry%%:*}; port=${entry##*:}
    echo "$name $port $name"
    for ((n = 2; n <= IM_REPLICAS; n++)); do
      [[ $REPLICATED == *" $name "* ]] && echo "$name-$n $((port + 10 * (n - 1))) $name"
    done
  done
  return 0
}

write_config() {
  cat <<CONF
[supervisord]
logfile=$LOG_DIR/supervisord.log
pidfile=$RUN_DIR/supervisord.pid
directory=$REPO_ROOT
childlogdir=$LOG_DIR

[unix_http_server]
file=$SOCK

[supervisorctl]
serverurl=unix://$SOCK

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
CONF
  local program port name module
  while read -r program port name; do
    module=${name//-/_}
    cat <<CONF

[program:$program]
command=$PY -m services.$module
environment=PYTHONPATH="$REPO_ROOT:$REPO_ROOT/contracts",KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$KAFKA_PORT",MONGODB_URI="mongodb://127.0.0.1:$MONGO_PORT/",IM_HTTP_PORT="$port",IM_AUTH_JWKS="$AUTH_DIR/jwks.json",KAFKA_CLIENT_PROPERTIES="$DATA_DIR/kafka/im-$name.properties"$(passed_environment)
autostart=true
autorestart=true
startsecs=1
startretries=1000
stopsignal=TERM
stopwaitsecs=30
stdout_logfile=$LOG_DIR/$program.log
stdout_logfile_maxbytes=50MB
redirect_stderr=true
CONF
  done < <(programs)
}

running() { [ -S "$SOCK" ] && "${SUPERVISORCTL[@]}" pid >/dev/null 2>&1; }

wait_ready() {
  local name port service i
  while read -r name port service; do
    for ((i = 0; i < 120; i++)); do
      curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
      sleep 0.5
    done
    if curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
      printf '  %-20s http://127.0.0.1:%s  (ready; log %s)\n' "$name" "$port" "$LOG_DIR/$name.log"
    else
      printf '  %-20s http://127.0.0.1:%s  (NOT READY; see %s)\n' "$name" "$port" "$LOG_DIR/$name.log"
    fi
  done < <(programs)
}

case "${1:-}" in
  start)
    check_passed_settings
    mkdir -p "$LOG_DIR" "$RUN_DIR"
    PYTHONPATH="$REPO_ROOT:$REPO_ROOT/contracts" "$PY" -m services.common.tokens init "$AUTH_DIR" >/dev/null
    write_config > "$CONF"
    if running; then
      "${SUPERVISORCTL[@]}" update >/dev/null
      "${SUPERVISORCTL[@]}" start all >/dev/null || true
    else
      setsid nohup "$SUPERVISORD" -c "$CONF" >>"$LOG_DIR/supervisord.out" 2>&1 </dev/null
    fi
    echo "Seller-Creator IM is starting:"
    echo "  kafka                127.0.0.1:$KAFKA_PORT"
    echo "  mongodb (local)      mongodb://127.0.0.1:$MONGO_PORT/"
    wait_ready
    echo "Tokens: make token ROLE=seller|creator|ops SUB=<id> [TTL=<seconds>]"
    echo "Stop with: make stop    Status: make status    Logs: $LOG_DIR" ;;
  stop)
    if running; then
      "${SUPERVISORCTL[@]}" shutdown >/dev/null || true
      for ((i = 0; i < 150; i++)); do running || break; sleep 0.2; done
    fi ;;
  status)
    if running; then "${SUPERVISORCTL[@]}" status || true; else echo "services: stopped"; fi ;;
  restart) "${SUPERVISORCTL[@]}" restart "$2" ;;
  kill)  # SIGKILL one service; supervisord brings it back (fault tests)
    pid=$("${SUPERVISORCTL[@]}" pid "$2")
    # supervisorctl answers 0 for a stopped program, and `kill -KILL 0` would hit our own process group
    [[ $pid =~ ^[0-9]+$ ]] && [ "$pid" -gt 1 ] || die "$2 is not running (supervisorctl pid: $pid)"
    kill -KILL "$pid" ;;
  pid) "${SUPERVISORCTL[@]}" pid "$2" ;;  # the service's process id (benchmarks read its memory)
  *) echo "usage: $0 start|stop|status|restart SERVICE|kill SERVICE|pid SERVICE" >&2; exit 2 ;;
esac
