# The two commands a newcomer needs: `make demo` and `make test`. Everything else is a helper of those.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck unit demo kafka-start kafka-stop kafka-status venv clean tools

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

## make test: install, lint, type-check, start a throwaway Kafka, run every test, stop that Kafka
test: $(STAMP)
	bash scripts/test.sh

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
