# `make run`: install into .venv and run the main job on the embedded synthetic cohort.
# `make test`: install (with dev extras and the example plugin) and run the test suite.
# `make lint`: ruff (configured in pyproject.toml).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/resectbench run --model swinunetr-fusion

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache
