# Two entry points for a fresh machine with Python 3.11+ and make:
#   make demo   create .venv, install, convert the sample data, summarise, write the report
#   make test   create .venv if needed, run lint and the test suite (make test-slow: soaks)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= out

.PHONY: demo test test-slow lint typecheck venv clean bench bench-queries docs-images

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	rm -rf $(OUT)
	$(BIN)/smsanalytics convert sample_data --out $(OUT)/dataset --rejects $(OUT)/rejects.jsonl
	$(BIN)/smsanalytics info $(OUT)/dataset
	$(BIN)/smsanalytics report $(OUT)/dataset --out $(OUT)/report.html --currency EUR
	@echo "report written to $(OUT)/report.html"

lint: $(STAMP)
	$(BIN)/ruff check .

# mypy, strict, on every module of the package.
typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

# Long soaks (minutes): random SIGKILLs, many writers, 1M-row generator. CI runs them.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

# The README's images (docs/*.png, docs/images.json) from the code, on sample_data.
docs-images: $(STAMP)
	$(BIN)/python docs/make_images.py

bench: $(STAMP)
	$(BIN)/python benchmarks/convert.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache .mypy_cache

bench-queries: $(STAMP)
	$(BIN)/python benchmarks/queries.py
