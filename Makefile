# The two commands of the README: `make dev` and `make test`. Everything they need is installed
# here: Python tools into .venv (pinned in requirements-dev.txt), Rust crates by cargo.

VENV ?= .venv
PYTHON ?= python3
export PAVED_PORT ?= 4000
export PAVED_AWS_PORT ?= 5000

DEPLOY_VENV ?= .venv-deploy

.PHONY: setup dev test lint build bench bench-access bench-deploy bench-lambda bench-moto bench-fleet bench-upgrade deploy-tools lambdas deploy clean

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
	scripts/aws_cli_v2.sh
	VENV=$(VENV) scripts/test.sh

## Render the sample corpus with paved and with Jinja2; print per-template times and the ratio.
bench: setup
	cargo bench -p paved-core --no-default-features --bench render

## What authentication and authorization add per call (p50, p99), against the same calls without.
bench-access:
	cargo bench -p paved-core --bench access

## Time create-environment → SUCCEEDED locally, split into paved's own time and the rest.
bench-deploy: setup
	cargo build --quiet -p paved-cli
	PAVED_BIN=$${CARGO_TARGET_DIR:-target}/debug/paved $(VENV)/bin/python scripts/bench_deploy.py

## A staged upgrade of 1,000 service instances against scripted fakes with latencies: paved's
## own time and AWS calls per target, wall time against concurrency x the engine's time.
bench-fleet:
	cargo bench -p paved-core --features testing --bench fleet

## A staged upgrade of 200 service instances end to end on paved dev.
bench-upgrade: setup
	cargo build --quiet -p paved-cli
	PAVED_BIN=$${CARGO_TARGET_DIR:-target}/debug/paved $(VENV)/bin/python scripts/bench_upgrade.py

## The local AWS's DynamoDB as a fleet grows: time per transaction and moto's memory, with
## moto_server.py's transaction fix and without.
bench-moto: setup
	$(VENV)/bin/python scripts/bench_moto.py

## Size and cold start (exec to first answer under a Lambda Runtime API) of the release binaries.
bench-lambda:
	cargo build --release --quiet -p paved-api -p paved-tasks -p paved-push -p paved-webhook
	PAVED_LAMBDA_BIN_DIR=$${CARGO_TARGET_DIR:-target}/release cargo test --quiet -p paved-tests --bench cold_start

$(DEPLOY_VENV)/.installed: requirements-deploy.txt
	$(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-deploy.txt
	touch $@

## The SAM CLI, cargo-lambda and zig (for the arm64 cross build), in their own venv.
deploy-tools: $(DEPLOY_VENV)/.installed

## Build the four Lambda functions for arm64 (sam build runs cargo lambda).
lambdas: deploy-tools
	PATH="$(CURDIR)/$(DEPLOY_VENV)/bin:$$PATH" $(DEPLOY_VENV)/bin/sam build --template-file infra/template.yaml

## Build, then deploy with samconfig.toml (pass more with DEPLOY_ARGS="--parameter-overrides ...").
deploy: lambdas
	PATH="$(CURDIR)/$(DEPLOY_VENV)/bin:$$PATH" $(DEPLOY_VENV)/bin/sam deploy $(DEPLOY_ARGS)

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

build:
	cargo build --workspace --all-targets

clean:
	rm -rf $(VENV) $(DEPLOY_VENV) .paved .aws-sam
	cargo clean
