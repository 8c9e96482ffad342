# Set-up and the two everyday jobs. `make run` and `make test` each create the
# virtualenv and install the package (editable) on first use; `make run` compiles the
# numba engines once (`inosim compile`); `make test` lints (ruff) first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COMPILED := $(VENV)/.compiled

.PHONY: run test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e ".[test]"
	touch $(STAMP)

# numba's machine code for every engine, cached beside the sources (one folder per version of
# them): compiled once here, so that no later command, `inosim trial` included, waits for it.
$(COMPILED): $(STAMP) $(shell find simulator -name '*.py')
	$(BIN)/inosim compile
	touch $(COMPILED)

run: $(COMPILED)
	$(BIN)/inosim run

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
