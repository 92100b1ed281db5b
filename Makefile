# The two commands a newcomer needs: `make demo` and `make test`.
# Both bootstrap .venv on first use with nothing but Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# gRPC stubs are generated next to each .proto (gitignored), and again when it changes.
PROTOS := $(shell find protos -name '*.proto')
STUBS  := $(PROTOS:.proto=_pb2.py)

.PHONY: demo test test-fast lint format up clean stubs venv tags

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

protos/%_pb2.py: protos/%.proto $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. --grpc_python_out=. $<

stubs: $(STUBS)

venv: $(STAMP) $(STUBS)

demo: $(STAMP) $(STUBS)
	$(BIN)/shop demo

test: $(STAMP) $(STUBS) lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The tests that need no server (no PostgreSQL, broker process or browser), four at a time
# (most of them wait on sockets, not the CPU): under a minute, for the edit loop.
test-fast: $(STAMP) $(STUBS)
	SHOP_TEST_FAST=1 $(BIN)/python -m pytest -q -n 4

lint: $(STAMP) $(STUBS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy monolith services gateway libs infra read_model

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

up: $(STAMP) $(STUBS)
	$(BIN)/shop up

# The stage tags (infra/stage_tags.toml) as annotated tags in this clone: `git checkout
# stage-N-...` then opens the repository at that stage. Needs only git and Python.
tags:
	@$(PYTHON) infra/tags.py

clean:
	rm -rf $(VENV) .shop .pytest_cache
	find protos -name '*_pb2*.py*' -delete
