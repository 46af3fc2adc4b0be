#!/usr/bin/env bash
# `make test`: the whole pytest suite against real infrastructure. The test
# session resolves its infrastructure itself (tests/infra.py); whatever native
# daemons it starts are stopped here again, even if pytest is interrupted.
set -uo pipefail
source "$(dirname "$0")/common.sh"
export SCIM_INSTANCE=${SCIM_TEST_INSTANCE:-test}
cleanup() { bash "$REPO_ROOT/deploy/local/infra.sh" stop >/dev/null 2>&1 || true; }
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ] || [ -z "${MONGODB_URI:-}" ]; then trap cleanup EXIT; fi
cd "$REPO_ROOT"
"$PY" -m pytest "$@"
status=$?
# pytest's 5 means it collected nothing: that is a failure of the suite here.
[ $status -eq 5 ] && { echo "no tests were collected" >&2; exit 1; }
exit $status
