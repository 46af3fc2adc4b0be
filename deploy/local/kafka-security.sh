# Kafka security of a local instance (DESIGN §8), sourced by infra.sh.
# SASL/SCRAM-SHA-512 for clients, SASL/PLAIN with the broker's own principal on
# the controller listener (KRaft keeps SCRAM credentials in the metadata the
# controller serves, so the controller cannot use them itself), the
# StandardAuthorizer with deny by default, and super users im-broker and im-ops.
# Passwords: random per instance, $KAFKA_SECRETS_DIR/<principal>.properties
# (Kafka client-properties format, owner only); SCRAM credentials are created
# at storage format time, and again with every ACL after a start whenever the
# code or the credentials changed since the last provisioning (idempotent).
KAFKA_SECRETS_DIR="$DATA_DIR/kafka"
KAFKA_LOG_DIR="$DATA_DIR/kafka/log"

suite_python() { PYTHONPATH="$REPO_ROOT:$REPO_ROOT/contracts" "$PY" -m "$@"; }

# A log formatted before SASL (at $DATA_DIR/kafka itself) has no SCRAM credentials
# and cannot get them without a super user: it is replaced by a fresh one.
kafka_security_migrate() {
  if [ -f "$KAFKA_SECRETS_DIR/meta.properties" ]; then
    log "the kafka log of $SCIM_INSTANCE predates SASL; replacing it with a fresh one"
    rm -rf "$KAFKA_SECRETS_DIR"
  fi
  suite_python services.common.credentials init "$KAFKA_SECRETS_DIR" >/dev/null
}

kafka_security_properties() {  # the listener, SASL and authorizer lines of server.properties
  local password
  password=$(sed -n 's/.*password="\([^"]*\)".*/\1/p' "$KAFKA_SECRETS_DIR/im-broker.properties")
  cat <<PROPS
listeners=CLIENT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=CLIENT://127.0.0.1:$KAFKA_PORT
listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
inter.broker.listener.name=CLIENT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="im-broker" password="$password";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="im-broker" password="$password" user_im-broker="$password";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:im-broker;User:im-ops
log.dirs=$KAFKA_LOG_DIR
PROPS
}

kafka_format_scram_args() {  # fills the array SCRAM_ARGS with kafka-storage's --add-scram arguments
  mapfile -t SCRAM_ARGS < <(suite_python services.common.credentials scram-args "$KAFKA_SECRETS_DIR")
}

# What the ACLs and credentials are made from: the code (subscriptions, registry,
# principals) and the credentials; the same digest means nothing to provision.
kafka_security_digest() {
  cat "$KAFKA_SECRETS_DIR"/*.properties "$KAFKA_LOG_DIR/meta.properties" \
    $(find "$REPO_ROOT/services" "$REPO_ROOT/contracts/im_contracts" -name '*.py' | sort) | sha256sum | cut -c1-16
}

kafka_security_provision() {  # every principal's credential and every ACL, as im-ops
  local stamp="$KAFKA_SECRETS_DIR/provisioned" digest
  digest=$(kafka_security_digest)
  [ "$(cat "$stamp" 2>/dev/null)" = "$digest" ] && return 0
  suite_python services.common.principals --bootstrap-servers "127.0.0.1:$KAFKA_PORT" "$KAFKA_SECRETS_DIR" \
    >>"$LOG_DIR/kafka-security.log" 2>&1 || { tail -n 20 "$LOG_DIR/kafka-security.log" >&2; die "kafka security provisioning failed (see $LOG_DIR/kafka-security.log)"; }
  echo "$digest" > "$stamp"
}
