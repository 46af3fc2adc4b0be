#!/bin/bash
# docker-compose, once: the broker's TLS key pair (self-signed; its certificate
# is what clients trust, /certs/ca.pem). Runs as root in the kafka image, so the
# key store can be handed to the broker's user and only the certificate is readable.
set -euo pipefail
: "${KAFKA_TLS_PASSWORD:?missing: generate .env as the README says}"
if [ ! -f /certs/broker.p12 ]; then
  keytool -genkeypair -keystore /certs/broker.p12 -storetype PKCS12 -storepass "$KAFKA_TLS_PASSWORD" \
    -alias kafka -keyalg RSA -keysize 2048 -validity 3650 -dname CN=kafka -ext SAN=dns:kafka,dns:localhost
  keytool -exportcert -rfc -keystore /certs/broker.p12 -storetype PKCS12 -storepass "$KAFKA_TLS_PASSWORD" \
    -alias kafka -file /certs/ca.pem
fi
chown "$KAFKA_UID" /certs/broker.p12 && chmod 0600 /certs/broker.p12 && chmod 0644 /certs/ca.pem
