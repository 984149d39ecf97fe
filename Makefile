# Two commands for a fresh machine:  `make demo` serves the app with demo data; `make test` runs the tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(wildcard plugins/*/pyproject.toml)

.PHONY: install demo test test-sqlite test-postgres lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]' $(foreach p,$(PLUGINS),-e $(dir $(p)))
	bash scripts/install-browser.sh

demo: install
	$(BIN)/praxis db upgrade
	$(BIN)/praxis demo
	$(BIN)/praxis serve --host 127.0.0.1 --port 8000

test: install
	bash scripts/test.sh

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) praxis-data
