# The two commands of the README: `make dev` and `make test`. Everything they need is installed
# here: Python tools into .venv (pinned in requirements-dev.txt), Rust crates by cargo.

VENV ?= .venv
PYTHON ?= python3
export PAVED_PORT ?= 4000
export PAVED_AWS_PORT ?= 5000

.PHONY: setup dev test lint build bench bench-deploy clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## Run the whole platform locally: moto as AWS, the Proton API on 127.0.0.1:$(PAVED_PORT).
dev: setup
	cargo run --quiet -p paved-cli -- dev --moto-server "$(VENV)/bin/python scripts/moto_server.py"

## Run every test: format, lints, unit tests, emulator tests, end-to-end tests with the aws CLI.
test: setup
	VENV=$(VENV) scripts/test.sh

## Render the sample corpus with paved and with Jinja2; print per-template times and the ratio.
bench: setup
	cargo bench -p paved-core --no-default-features --bench render

## Time create-environment → SUCCEEDED locally, split into paved's own time and the rest.
bench-deploy: setup
	cargo build --quiet -p paved-cli
	PAVED_BIN=$${CARGO_TARGET_DIR:-target}/debug/paved $(VENV)/bin/python scripts/bench_deploy.py

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

build:
	cargo build --workspace --all-targets

clean:
	rm -rf $(VENV) .paved
	cargo clean
