#!/usr/bin/env bash
# Installs whatever is missing for the suite: toolchains (Debian packages),
# the Python virtualenv, Apache Kafka's jars and the FerretDB binary.
# Idempotent: a second run only checks and returns.
set -euo pipefail
source "$(dirname "$0")/common.sh"

apt_install() {  # apt_install DEBIAN_PACKAGE
  log "installing Debian package $1"
  if [ "$(id -u)" != 0 ]; then die "Debian package $1 is missing; install it (needs root)"; fi
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq >/dev/null; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}

ensure_tool() {  # ensure_tool COMMAND DEBIAN_PACKAGE
  command -v "$1" >/dev/null 2>&1 || apt_install "$2"
}

ensure_python_env() {
  # The virtualenv holds third-party packages only, keyed by the pinned
  # dependency lists; the suite's own code runs from the checkout (PYTHONPATH),
  # so clones and worktrees share one environment.
  local stamp="$VENV_DIR/.complete"
  [ -f "$stamp" ] && return 0
  log "creating virtualenv $VENV_DIR"
  rm -rf "$VENV_DIR"
  python3 -m venv "$VENV_DIR"
  "$PY" -m pip install -q --upgrade pip
  "$PY" - "$REPO_ROOT" > "$VENV_DIR/requirements.txt" <<'PYREQ'
import sys, tomllib
root = sys.argv[1]
for path in (f"{root}/pyproject.toml", f"{root}/contracts/pyproject.toml"):
    project = tomllib.load(open(path, "rb"))["project"]
    for dep in project["dependencies"] + project.get("optional-dependencies", {}).get("test", []):
        if not dep.startswith("im-contracts"):
            print(dep)
PYREQ
  "$PY" -m pip install -q -r "$VENV_DIR/requirements.txt"
  touch "$stamp"
}

ensure_kafka() {
  [ -f "$KAFKA_LIB_DIR/kafka_2.13-$KAFKA_VERSION.jar" ] && return 0
  ensure_tool java openjdk-17-jre-headless
  ensure_tool mvn maven
  log "resolving Apache Kafka $KAFKA_VERSION jars from Maven Central"
  local tmp; tmp=$(mktemp -d)
  cp "$REPO_ROOT/deploy/local/kafka-pom.xml" "$tmp/pom.xml"
  (cd "$tmp" && mvn -q -B -Dkafka.version="$KAFKA_VERSION" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp/lib") >"$tmp/mvn.log" 2>&1 \
    || { tail -n 30 "$tmp/mvn.log" >&2; die "could not resolve Kafka jars"; }
  mkdir -p "$(dirname "$KAFKA_LIB_DIR")"
  rm -rf "$KAFKA_LIB_DIR" && mv "$tmp/lib" "$KAFKA_LIB_DIR" && rm -rf "$tmp"
}

ensure_ferretdb() {
  [ -x "$FERRETDB_BIN" ] && return 0
  ensure_tool go golang-go
  log "building FerretDB $FERRETDB_VERSION from the Go module proxy"
  # `go install …/cmd/ferretdb@$FERRETDB_VERSION` builds a binary that panics at start:
  # the module ships without build/version/version.txt. Build the same module
  # source with that file written, which is what its release build does.
  local src tmp
  src=$(go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  tmp=$(mktemp -d)
  cp -r "$src/." "$tmp/" && chmod -R u+w "$tmp"
  echo "$FERRETDB_VERSION" > "$tmp/build/version/version.txt"
  # The SQLite backend filters `_id` with `_ferretdb_sjson->'$._id'` but indexes
  # `_ferretdb_sjson->"_id"`; SQLite uses an expression index only for the same
  # expression, so every find, update and delete by `_id` scanned its table.
  # Filter with the indexed expression (same value, same semantics).
  sed -i "s|IDColumn = DefaultColumn + \"->'\$._id'\"|IDColumn = DefaultColumn + \"->'_id'\"|" \
    "$tmp/internal/backends/sqlite/metadata/metadata.go"
  grep -q "IDColumn = DefaultColumn + \"->'_id'\"" "$tmp/internal/backends/sqlite/metadata/metadata.go" \
    || die "FerretDB source changed: the _id filter patch no longer applies"
  mkdir -p "$(dirname "$FERRETDB_BIN")"
  (cd "$tmp" && CGO_ENABLED=0 go build -trimpath -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb) \
    || die "FerretDB build failed"
  mv "$FERRETDB_BIN.tmp" "$FERRETDB_BIN" && rm -rf "$tmp"
}

mkdir -p "$SCIM_CACHE"
ensure_tool python3 python3
python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
ensure_python_env
ensure_kafka
ensure_ferretdb
log "toolchain ready (cache: $SCIM_CACHE)"
