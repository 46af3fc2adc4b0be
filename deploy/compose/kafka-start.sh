#!/bin/bash
# docker-compose's broker with DESIGN §8: SASL/SCRAM-SHA-512 over TLS for
# clients (INTERNAL for the services, EXTERNAL published to the host), SASL/PLAIN
# with the broker's own principal on the controller listener (not published),
# the StandardAuthorizer with deny by default, super users im-broker and im-ops.
# Every principal's SCRAM credential is created when the storage is formatted;
# the `topics` service then creates the ACLs (python -m services.common.principals).
set -euo pipefail
: "${KAFKA_PASSWORD_BROKER:?missing: generate .env as the README says}"
DATA=/var/lib/kafka/data
CONFIG=/tmp/server.properties
umask 077
scram_jaas() { echo "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$1\" password=\"$2\";"; }
cat > "$CONFIG" <<PROPS
process.roles=${KAFKA_PROCESS_ROLES:-broker,controller}
node.id=1
controller.quorum.voters=1@localhost:9093
listeners=INTERNAL://:19092,EXTERNAL://:9092,CONTROLLER://localhost:9093
advertised.listeners=INTERNAL://kafka:19092,EXTERNAL://localhost:9092
listener.security.protocol.map=INTERNAL:SASL_SSL,EXTERNAL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT
inter.broker.listener.name=INTERNAL
controller.listener.names=CONTROLLER
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.internal.scram-sha-512.sasl.jaas.config=$(scram_jaas im-broker "$KAFKA_PASSWORD_BROKER")
listener.name.external.scram-sha-512.sasl.jaas.config=$(scram_jaas im-broker "$KAFKA_PASSWORD_BROKER")
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="im-broker" password="$KAFKA_PASSWORD_BROKER" user_im-broker="$KAFKA_PASSWORD_BROKER";
ssl.keystore.type=PKCS12
ssl.keystore.location=/certs/broker.p12
ssl.keystore.password=$KAFKA_TLS_PASSWORD
ssl.truststore.type=PEM
ssl.truststore.location=/certs/ca.pem
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:im-broker;User:im-ops
log.dirs=$DATA
num.partitions=6
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
group.initial.rebalance.delay.ms=0
message.max.bytes=2097152
PROPS
# What the health check connects as.
cat > /tmp/im-ops.properties <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=$(scram_jaas im-ops "$KAFKA_PASSWORD_OPS")
ssl.truststore.type=PEM
ssl.truststore.location=/certs/ca.pem
PROPS
if [ ! -f "$DATA/meta.properties" ]; then
  scram=()
  for principal in ${KAFKA_PRINCIPALS:?missing: generate .env as the README says}; do  # im-broker im-ops im-upstream im-<service>...
    variable="KAFKA_PASSWORD_$(echo "${principal#im-}" | tr 'a-z-' 'A-Z_')"
    scram+=(--add-scram "SCRAM-SHA-512=[name=$principal,password=${!variable:?missing: generate .env as the README says}]")
  done
  /opt/kafka/bin/kafka-storage.sh format -c "$CONFIG" --cluster-id "$(/opt/kafka/bin/kafka-storage.sh random-uuid)" "${scram[@]}"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$CONFIG"
