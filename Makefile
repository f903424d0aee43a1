# BlindspotX monitoring bundle: thin wrapper over scripts/ (the logic lives
# there, in bash). `make help` lists the targets.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# The project venv first (cargo-lambda, moto, cfn-lint), promtool, then rustup's cargo.
export PATH := $(CURDIR)/.venv/bin:$(CURDIR)/.local/tools:$(or $(CARGO_HOME),$(HOME)/.cargo)/bin:$(PATH)

.PHONY: help bootstrap run stop demo invoke test soak lint fmt package stack-up stack-down stack-status provision redrive load

help: ## list the targets
	@awk -F':.*## ' '/^[a-z-]+:.*## / { printf "  make %-13s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

bootstrap: ## install what is missing: .venv (moto, boto3, cargo-lambda, cfn-lint), checkov, sam, redis, postgres, prometheus, alertmanager, amtool
	@scripts/bootstrap.sh

run: ## local stack + cargo lambda watch on 127.0.0.1:9000, probe and alert evaluator every 60 s; Ctrl-C stops
	@scripts/run.sh

stop: ## stop what `make run` started (only that)
	@scripts/stop.sh

# Both need `make run` serving (in another terminal); they set the PATH and
# the stack environment themselves, so they work from a fresh shell.
demo: ## run the demo again against a serving `make run`
	@eval "$$(scripts/stack.sh env)" && python3 scripts/demo.py --port 9000 --work .local/run/demo \
	  --receiver-log .local/run/receiver.jsonl --signing-key-file .local/run/webhook-signing-key

FN ?= component-probe
EVENT ?= events/scheduled.json
invoke: ## invoke one function of a serving `make run`: make invoke FN=health-api EVENT=events/api-health.json
	cargo lambda invoke --invoke-address 127.0.0.1 --invoke-port 9000 $(FN) --data-file $(EVENT)

test: ## what CI runs: fmt check, clippy, cargo test against the local stack, cfn-lint, checkov, sam validate
	@scripts/test.sh

# The chaos test of `make test` (tests/stack/chaos.rs) at a larger size: SIZE
# multiplies its 48 batches; SEED replays a run (default: a random seed,
# printed with the report). Needs the local stack for its DynamoDB part.
SEED ?=
SIZE ?= 20
soak: ## the chaos test, larger: make soak SEED=42 SIZE=20 (prints the seed, retries and faults)
	@eval "$$(scripts/stack.sh env)" && CHAOS_SEED=$(SEED) CHAOS_SIZE=$(SIZE) \
	  cargo test -p tests --test stack -- chaos:: --nocapture

lint: bootstrap ## fmt check, clippy -D warnings, cfn-lint, checkov, sam validate --lint (no stack needed)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cfn-lint template.yaml
	checkov -f template.yaml --framework cloudformation --quiet --compact --skip-download
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} SAM_CLI_TELEMETRY=0 sam validate --lint -t template.yaml

fmt: ## format the Rust code
	cargo fmt --all

# Not part of `make test`. arm64 needs the aarch64 std (rustup target add).
package: bootstrap ## size-optimised zips for AWS Lambda arm64 in target/package/<fn>/bootstrap.zip
	@rustup target list --installed | grep -qx aarch64-unknown-linux-gnu \
	  || rustup target add aarch64-unknown-linux-gnu
	cargo lambda build --profile lambda --arm64 --output-format zip --lambda-dir target/package

# `sam build` (template.yaml: Metadata BuildMethod makefile) runs
# `make build-<LogicalId> ARTIFACTS_DIR=...` per function, in the source tree
# (samconfig.toml: build_in_source): the same size-optimised arm64 build as
# `make package`, one binary at a time; bootstrap is all the zip holds.
SAM_LAMBDA_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)/sam-lambda
define sam_function
	@rustup target list --installed | grep -qx aarch64-unknown-linux-gnu \
	  || rustup target add aarch64-unknown-linux-gnu
	cargo lambda build --profile lambda --arm64 --locked --bin $(1) --lambda-dir "$(SAM_LAMBDA_DIR)"
	cp "$(SAM_LAMBDA_DIR)/$(1)/bootstrap" "$(ARTIFACTS_DIR)/bootstrap"
endef

.PHONY: build-ComponentProbeFunction build-HealthApiFunction build-LogMetricsFunction \
	build-AlertEvaluatorFunction build-IncidentNotifierFunction build-SecurityResponderFunction
build-ComponentProbeFunction:
	$(call sam_function,component-probe)
build-HealthApiFunction:
	$(call sam_function,health-api)
build-LogMetricsFunction:
	$(call sam_function,log-metrics)
build-AlertEvaluatorFunction:
	$(call sam_function,alert-evaluator)
build-IncidentNotifierFunction:
	$(call sam_function,incident-notifier)
build-SecurityResponderFunction:
	$(call sam_function,security-responder)

stack-up: bootstrap ## start the local stack only (moto, postgres, redis, oidc fixture, alertmanager)
	@scripts/stack.sh up

stack-down: ## stop every local stack service (all, whoever started them)
	@scripts/stack.sh down

stack-status: ## show the local stack services
	@scripts/stack.sh status

provision: ## create the DynamoDB table and SNS topic in the running moto
	@scripts/provision.sh

# Both against the local stack (its environment is set here). On a deployed
# stack, run `cargo run --release -p ops -- redrive ...` with the
# function's configuration instead: docs/runbooks/redrive.md.
MOTO_QUEUES = $${AWS_ENDPOINT_URL}/123456789012
redrive: ## feed the local failure queues back through the handlers, exactly once: make redrive ARGS=--dry-run (docs/runbooks/redrive.md)
	@eval "$$(scripts/stack.sh env)" && \
	  REDACTION_KEY="$${REDACTION_KEY:-$$(cat .local/run/redaction-key 2>/dev/null)}" \
	  LOG_METRICS_FAILURE_QUEUE_URL="$${LOG_METRICS_FAILURE_QUEUE_URL:-$(MOTO_QUEUES)/blindspotx-log-metrics-failures}" \
	  NOTIFIER_FAILURE_QUEUE_URL="$${NOTIFIER_FAILURE_QUEUE_URL:-$(MOTO_QUEUES)/blindspotx-incident-notifier-failures}" \
	  cargo run --quiet -p ops -- redrive $(ARGS)

LOAD_ARGS ?=
load: ## bounded load test on the local stack (default 8 senders x 20 batches x 100 events): make load LOAD_ARGS="--batches 200 --events 500"
	@eval "$$(scripts/stack.sh env)" && RUST_LOG=warn cargo run --quiet --release -p ops -- load $(LOAD_ARGS)
