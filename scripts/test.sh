#!/usr/bin/env bash
# The whole test run behind `make test`: lint, types, then every pytest tier against a real Kafka and PostgreSQL.
# A broker is started on its own port with throwaway storage, and stopped again however the run ends,
# unless RK_KAFKA__BOOTSTRAP names an existing broker to use instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin

echo "== ruff"
"$bin/ruff" check .
"$bin/ruff" format --check .
echo "== mypy"
"$bin/mypy"
echo "== message handbook (docs/xantragsstatus.md regenerated from the XSD and the code lists, must not differ)"
"$bin/python" scripts/handbook.py --check
echo "== dependency audit (pip-audit over the lock files; findings and decisions: docs/operations.md)"
"$bin/python" scripts/audit.py requirements.lock requirements-dev.lock
echo "== ops tools (helm, kubeconform, promtool: pinned, cached in ~/.cache/rueckkanal/tools)"
bash scripts/tools.sh ensure

# Services started here are stopped again however the run ends, in reverse order.
cleanup=()
on_exit() {
    local i
    for ((i = ${#cleanup[@]} - 1; i >= 0; i--)); do eval "${cleanup[i]}" || true; done
}
trap on_exit EXIT

if [[ -z "${RK_KAFKA__BOOTSTRAP:-}" ]]; then
    export RK_KAFKA_PORT="${RK_TEST_KAFKA_PORT:-19192}"
    RK_KAFKA_DATA="$(mktemp -d -t rk-kafka-test-XXXXXX)"
    export RK_KAFKA_DATA
    cleanup+=('env -u RK_KAFKA__BOOTSTRAP bash scripts/kafka.sh stop; rm -rf "$RK_KAFKA_DATA"')
    echo "== kafka"
    bash scripts/kafka.sh start
    export RK_KAFKA__BOOTSTRAP="127.0.0.1:$RK_KAFKA_PORT"
fi

# A throwaway PostgreSQL cluster for the status store tests, stopped and deleted however the run ends,
# unless RK_TEST_POSTGRES_DSN names an existing one.
if [[ -z "${RK_TEST_POSTGRES_DSN:-}" ]]; then
    export RK_POSTGRES_PORT="${RK_TEST_POSTGRES_PORT:-15433}"
    RK_POSTGRES_DATA="$(mktemp -d -t rk-postgres-test-XXXXXX)"
    export RK_POSTGRES_DATA
    cleanup+=('bash scripts/postgres.sh stop; rm -rf "$RK_POSTGRES_DATA"')
    echo "== postgresql"
    RK_TEST_POSTGRES_DSN="$(bash scripts/postgres.sh start)"
    export RK_TEST_POSTGRES_DSN
fi

echo "== pytest (broker $RK_KAFKA__BOOTSTRAP, postgres $RK_TEST_POSTGRES_DSN)"
"$bin/pytest" "$@"
