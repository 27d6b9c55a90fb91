# The commands a user types. `make demo` and `make test` are the README's quick start.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
DEMO := .rrstitch/demo
# The demo's CLI: local backends only (no cloud SDK to compile), a quick-to-build profile.
RRSTITCH := target/demo/rrstitch

.PHONY: demo demo-build image image-tools test test-unit lint fmt bench build emulators browser viewer fuzz soak clean package deploy-aws deploy-gcp

build:
	$(CARGO) build --release -p rrstitch-cli

demo-build:
	$(CARGO) build --locked --profile demo -p rrstitch-cli --no-default-features

## demo: the main job on the embedded default — sample chunks (a real rrweb recording plus
## generated sessions, a few duplicates and malformed objects) ingested into a local SQLite
## index, swept, stitched into $(DEMO)/results.
demo: demo-build
	rm -rf $(DEMO)
	mkdir -p $(DEMO)/bucket
	cp fixtures/rrweb-form/chunks/*.json $(DEMO)/bucket/
	$(RRSTITCH) generate --out $(DEMO)/bucket --sessions 20 --events 750 --duplicates 3 --bad 5
	@echo "== ingest: every object in the bucket is an event"
	RRSTITCH_INDEX=sqlite:$(DEMO)/index.sqlite RRSTITCH_RESULTS=$(DEMO)/results $(RRSTITCH) ingest $(DEMO)/bucket
	@echo "== sweep: finalize idle sessions (--idle 0s: everything is idle now)"
	RRSTITCH_INDEX=sqlite:$(DEMO)/index.sqlite RRSTITCH_RESULTS=$(DEMO)/results $(RRSTITCH) sweep --idle 0s
	@echo "== the index"
	RRSTITCH_INDEX=sqlite:$(DEMO)/index.sqlite $(RRSTITCH) sessions --limit 5
	RRSTITCH_INDEX=sqlite:$(DEMO)/index.sqlite $(RRSTITCH) rejected
	@echo "== where things stand"
	RRSTITCH_INDEX=sqlite:$(DEMO)/index.sqlite $(RRSTITCH) status
	@echo "== stitched sessions are in $(DEMO)/results ($$(ls $(DEMO)/results | wc -l) files); view them with: $(RRSTITCH) view $(DEMO)/results (after make viewer)"

## test: everything, on a fresh machine: installs the emulators and the browser, then runs
## unit, conformance, end-to-end and browser tests.
test: emulators browser image
	terraform fmt -check -recursive infra
	$(CARGO) build --workspace --bins --tests --locked
	bash scripts/test.sh

## fuzz: each cargo-fuzz target for FUZZ_SECS (default 60), corpus seeded from the fixtures.
FUZZ_SECS ?= 60
fuzz:
	bash scripts/fuzz.sh $(FUZZ_SECS)

## soak: the fault suite scaled up tenfold, then each fuzz target for 10 minutes.
soak: emulators
	$(CARGO) build --workspace --bins --tests --locked
	RRSTITCH_SOAK=1 $(CARGO) test --locked -p rrstitch-tests --test faults -- --nocapture
	bash scripts/fuzz.sh 600

test-unit:
	$(CARGO) test --workspace --lib --bins

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	terraform fmt -check -recursive infra

## package: the two Lambda zips, target/lambda/<bin>/bootstrap.zip (cargo-lambda from PyPI).
package:
	bash scripts/package-lambda.sh

## deploy-aws: infra/aws with those zips (AWS_TFVARS, default infra/aws/terraform.tfvars).
deploy-aws: package
	bash scripts/deploy-aws.sh

## deploy-gcp: images built and pushed, then infra/gcp/example (GCP_TFVARS). Docker, or buildah+skopeo (make image-tools).
deploy-gcp:
	bash scripts/deploy-gcp.sh

fmt:
	$(CARGO) fmt --all

## bench: the batch job (bench/run.sh), finalize's parallel reads, the functions on the
## emulators (ingest requests/s and queue-mode finalize sessions/s with 1, 2, 4 workers), and
## bulk work: windowed against unwindowed reconcile, a re-stitch of 2,000 sessions by queue.
bench: emulators
	bash bench/run.sh
	$(CARGO) build --release --locked -p rrstitch-cli -p rrstitch-ingest -p rrstitch-finalize
	$(CARGO) bench --locked -p rrstitch-tests --bench finalize
	$(CARGO) bench --locked -p rrstitch-tests --bench cloud
	$(CARGO) bench --locked -p rrstitch-tests --bench bulk

emulators:
	bash scripts/install-emulators.sh

## image: both Cloud Run images as docker-archives in target/images/ (buildah; no Docker engine).
image: image-tools
	bash scripts/build-images.sh

image-tools:
	bash scripts/install-image-tools.sh

## browser: Debian's chromium (apt), rrweb and playwright-core (npm ci) for the browser tests.
browser:
	bash scripts/install-browser.sh

## viewer: rrweb from npm into viewer/node_modules, for `rrstitch view`.
viewer:
	cd viewer && npm ci --no-audit --no-fund --loglevel=error

clean:
	rm -rf .rrstitch target/bench
