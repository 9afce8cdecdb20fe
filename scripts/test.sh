#!/usr/bin/env bash
# The whole test run behind `make test`: lint, types, then every pytest tier against a real Kafka.
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
echo "== ops tools (helm, kubeconform, promtool: pinned, cached in ~/.cache/rueckkanal/tools)"
bash scripts/tools.sh ensure

if [[ -z "${RK_KAFKA__BOOTSTRAP:-}" ]]; then
    export RK_KAFKA_PORT="${RK_TEST_KAFKA_PORT:-19192}"
    RK_KAFKA_DATA="$(mktemp -d -t rk-kafka-test-XXXXXX)"
    export RK_KAFKA_DATA
    trap 'env -u RK_KAFKA__BOOTSTRAP bash scripts/kafka.sh stop || true; rm -rf "$RK_KAFKA_DATA"' EXIT
    echo "== kafka"
    bash scripts/kafka.sh start
    export RK_KAFKA__BOOTSTRAP="127.0.0.1:$RK_KAFKA_PORT"
fi

echo "== pytest (broker $RK_KAFKA__BOOTSTRAP)"
"$bin/pytest" "$@"
