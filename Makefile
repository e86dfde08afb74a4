# DenseLens: `make run` starts the app, `make test` runs every test headless.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Stamps record which requirements the venv was built from; editing a
# requirements file (or deleting .venv) makes the venv stale and rebuilds it.
RUN_STAMP := $(VENV)/.run-stamp
DEV_STAMP := $(VENV)/.dev-stamp

.PHONY: run test lint bench app test-bundle clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUN_STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(RUN_STAMP) $@

run: $(RUN_STAMP)
	$(PY) main.py $(ARGS)

test: $(DEV_STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: $(DEV_STAMP)
	$(PY) -m ruff check .

bench: $(DEV_STAMP)
	$(PY) bench/bench_predict.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache

# app: dist/DenseLens (docs/PACKAGING.md). DENSELENS_BUNDLE_WEIGHTS=densenet121,... (or all) bundles those
# ImageNet weights from the torch cache; unset, none.
app: $(DEV_STAMP)
	$(PY) -m PyInstaller --noconfirm --distpath dist --workpath build/pyinstaller build.spec

# test-bundle: builds into a temporary folder (deleted afterwards) and starts it like a release;
# DENSELENS_BUNDLE_DIR=path/to/DenseLens tests an existing build instead.
test-bundle: $(DEV_STAMP)
	$(PY) -m pytest -m bundle -p no:cacheprovider tests/test_bundle.py
