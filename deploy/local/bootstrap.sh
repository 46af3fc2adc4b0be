#!/usr/bin/env bash
# Installs whatever is missing for the suite: toolchains (Debian packages),
# the Python virtualenv, Apache Kafka's jars and the local database
# (mongo-java-server's jars and its launcher).
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

resolve_jars() {  # resolve_jars POM LIB_DIR WHAT [MAVEN_ARGS...]: POM's runtime classpath into LIB_DIR
  local pom=$1 lib_dir=$2 what=$3 tmp; shift 3
  ensure_tool java openjdk-17-jre-headless
  ensure_tool mvn maven
  log "resolving $what jars from Maven Central"
  tmp=$(mktemp -d)
  cp "$pom" "$tmp/pom.xml"
  (cd "$tmp" && mvn -q -B "$@" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp/lib") >"$tmp/mvn.log" 2>&1 \
    || { tail -n 30 "$tmp/mvn.log" >&2; die "could not resolve $what jars"; }
  mkdir -p "$(dirname "$lib_dir")"
  rm -rf "$lib_dir" && mv "$tmp/lib" "$lib_dir" && rm -rf "$tmp"
}

ensure_kafka() {
  [ -f "$KAFKA_LIB_DIR/kafka_2.13-$KAFKA_VERSION.jar" ] && return 0
  resolve_jars "$REPO_ROOT/deploy/local/kafka-pom.xml" "$KAFKA_LIB_DIR" "Apache Kafka $KAFKA_VERSION" \
    -Dkafka.version="$KAFKA_VERSION"
}

ensure_mongo() {  # mongo-java-server's jars, and deploy/local/MongoLauncher.java compiled against them
  [ -f "$MONGO_LIB_DIR/mongo-java-server-core-$MONGO_JAVA_SERVER_VERSION.jar" ] \
    || resolve_jars "$REPO_ROOT/deploy/local/mongo-pom.xml" "$MONGO_LIB_DIR" \
         "mongo-java-server $MONGO_JAVA_SERVER_VERSION" -Dmongo-java-server.version="$MONGO_JAVA_SERVER_VERSION"
  [ -f "$MONGO_CLASSES_DIR/MongoLauncher.class" ] && return 0
  ensure_tool javac openjdk-17-jdk-headless
  log "compiling the database launcher into $MONGO_CLASSES_DIR"
  rm -rf "$MONGO_CLASSES_DIR.tmp"
  javac -nowarn -cp "$MONGO_LIB_DIR/*" -d "$MONGO_CLASSES_DIR.tmp" "$MONGO_LAUNCHER_SRC" \
    || die "could not compile $MONGO_LAUNCHER_SRC"
  rm -rf "$MONGO_CLASSES_DIR" && mv "$MONGO_CLASSES_DIR.tmp" "$MONGO_CLASSES_DIR"
}

mkdir -p "$SCIM_CACHE"
ensure_tool python3 python3
python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
ensure_python_env
ensure_kafka
ensure_mongo
log "toolchain ready (cache: $SCIM_CACHE)"
