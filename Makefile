# The two commands a newcomer needs: `make demo` and `make test`. Everything else is a helper of those.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test image lint typecheck unit demo kafka-start kafka-stop kafka-status venv clean tools lock

venv: $(STAMP)

# Exactly the versions and hashes of the lock file, nothing resolved at install time; `pip check` fails if the lock
# no longer satisfies pyproject.toml (run `make lock` after changing its dependencies).
$(STAMP): pyproject.toml requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e ".[dev]"
	$(BIN)/python -m pip check
	touch $(STAMP)

## make lock: recompile requirements.lock and requirements-dev.lock from pyproject.toml (ARGS=--upgrade: newest pins)
lock:
	bash scripts/lock.sh $(ARGS)

## make test: install, lint, type-check, start a throwaway Kafka, run every test, stop that Kafka
test: $(STAMP)
	bash scripts/test.sh

## make image: the worker image without Docker (buildah + mmdebstrap, needs root), smoke-tested; writes
## dist/rueckkanal-<version>.oci.tar and its CycloneDX SBOM (docs/operations.md, "The image")
image: $(STAMP)
	CYCLONEDX=$(BIN)/cyclonedx-py bash scripts/image.sh

## make demo: local Kafka, portal simulator and worker; the example events end to end, shown as a table; Ctrl-C stops
## everything (make demo ARGS=--once: print the table and stop at once)
demo: $(STAMP)
	$(BIN)/python scripts/demo.py $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit

tools:
	bash scripts/tools.sh ensure

kafka-start:
	bash scripts/kafka.sh start

kafka-stop:
	bash scripts/kafka.sh stop

kafka-status:
	bash scripts/kafka.sh status

clean:
	bash scripts/kafka.sh stop || true
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
