#!/usr/bin/env bash
# `make test`: formatting, lints, unit tests, adapter tests against moto, then end-to-end tests
# that drive a real `paved dev` with the stock aws CLI and boto3.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

step() { printf '\n== %s\n' "$*"; }

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo clippy -p paved-core --benches --features testing --quiet -- -D warnings

step "build"
cargo build --workspace --all-targets --quiet

free_port() { "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

step "unit and emulator tests (cargo test)"
MOTO_PORT_FOR_TESTS=$(free_port)
mkdir -p .paved
"$VENV/bin/python" scripts/moto_server.py -H 127.0.0.1 -p "$MOTO_PORT_FOR_TESTS" > .paved/moto-tests.log 2>&1 &
MOTO_PID=$!
trap 'kill $MOTO_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$MOTO_PORT_FOR_TESTS/moto-api/" > /dev/null && break
  sleep 0.1
done
PAVED_TEST_AWS_ENDPOINT="http://127.0.0.1:$MOTO_PORT_FOR_TESTS" cargo test --workspace --quiet
kill $MOTO_PID 2>/dev/null || true
trap - EXIT

step "end-to-end tests (aws CLI and boto3 against paved dev)"
PAVED_BIN="$TARGET_DIR/debug/paved" VENV="$VENV" "$VENV/bin/pytest" tests/e2e -q -p no:cacheprovider
