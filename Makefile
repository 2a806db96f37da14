# The two commands of the README:
#   make run   install into .venv/, prepare the database and serve http://127.0.0.1:8000
#   make test  install what the tests need and run the whole suite (SQLite and PostgreSQL)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run install setup serve test lint bench clean

run: install setup serve

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

setup:
	$(BIN)/trialdesk setup
	$(BIN)/trialdesk demo --if-empty

serve:
	$(BIN)/trialdesk serve

test:
	bash scripts/test

lint:
	$(BIN)/ruff check trialdesk tests bench
	$(BIN)/lint-imports

bench:
	$(BIN)/python bench/mmrm.py
	$(BIN)/python bench/power.py

clean:
	rm -rf $(VENV) var build *.egg-info
