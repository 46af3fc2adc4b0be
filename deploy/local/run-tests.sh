#!/usr/bin/env bash
# `make test`: the whole pytest suite against real infrastructure. The test
# session resolves its infrastructure itself (tests/infra.py); whatever native
# daemons it starts are stopped here again, even if pytest is interrupted.
set -uo pipefail
source "$(dirname "$0")/common.sh"
export SCIM_INSTANCE=${SCIM_TEST_INSTANCE:-test}
# The fault tests (tests/chaos) run their own instance "chaos" and stop it
# themselves; this is the safety net for a killed pytest. Its daemons are stopped
# whatever infrastructure the rest of the suite used; so is the database alone
# that the engine conformance tests (tests/engine) kill on purpose.
stop_chaos() {
  SCIM_INSTANCE=chaos bash "$REPO_ROOT/deploy/local/services.sh" stop >/dev/null 2>&1 || true
  SCIM_INSTANCE=chaos bash "$REPO_ROOT/deploy/local/infra.sh" stop >/dev/null 2>&1 || true
}
stop_engine() { SCIM_INSTANCE=engine bash "$REPO_ROOT/deploy/local/infra.sh" stop-mongo >/dev/null 2>&1 || true; }
stop_test_infra() { bash "$REPO_ROOT/deploy/local/infra.sh" stop >/dev/null 2>&1 || true; }
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ] || [ -z "${MONGODB_URI:-}" ]; then
  trap 'stop_chaos; stop_engine; stop_test_infra' EXIT
else
  trap 'stop_chaos; stop_engine' EXIT
fi
cd "$REPO_ROOT"
"$PY" -m pytest "$@"
status=$?
# pytest's 5 means it collected nothing: that is a failure of the suite here.
[ $status -eq 5 ] && { echo "no tests were collected" >&2; exit 1; }
exit $status
