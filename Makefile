# Two commands for newcomers (see README): `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast lint bench translations bundle smoke-bundle clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel

# The app's runtime only: ONNX Runtime, FAISS, Qt, no torch.
$(VENV)/.installed-runtime: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# Adds the model-preparation extra (torch, open_clip) and the developer tools.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[export,dev]'
	touch $@ $(VENV)/.installed-runtime

run: $(VENV)/.installed-runtime
	$(BIN)/photosearch

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Tests run on one worker process per core (pytest-xdist), at most 4: each worker exports the
# tiny test packs once and holds torch (about 1 GB). worksteal: the long real-architecture
# exports run beside the rest instead of after it. PYTEST_WORKERS=0 runs them in this process.
PYTEST_WORKERS ?= auto
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --maxprocesses=4 --dist worksteal

# Everything, including the slow group that exports the real architectures (minutes).
test: lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(PYTEST_PARALLEL)

# The quick loop while developing: skips the real-architecture exports.
test-fast: $(VENV)/.installed-dev
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(PYTEST_PARALLEL) -m "not slow"

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/encoders.py

# The translators' template (resources/translations/photosearch.ts) from every tr() in ui/;
# a test fails when it is out of date. photosearch_<lang>.ts files are compiled with lrelease.
translations: $(VENV)/.installed-dev
	$(BIN)/pyside6-lupdate ui/*.py -no-obsolete -locations none -ts resources/translations/photosearch.ts
	for ts in resources/translations/photosearch_*.ts; do [ -e "$$ts" ] && $(BIN)/pyside6-lrelease "$$ts"; done; true

# The desktop bundle (PyInstaller, one folder, no torch) with its .tar.gz and .deb, in
# build/dist-$(FLAVOUR)/; each flavour builds in its own build/venv-$(FLAVOUR). See
# docs/packaging.md. FLAVOUR=gpu for onnxruntime-gpu; WITH_PACK=DIR puts a model pack inside.
FLAVOUR ?= cpu
bundle: | $(BIN)/python
	$(BIN)/python packaging/build.py --flavour $(FLAVOUR) --tar --deb \
		$(if $(WITH_PACK),--with-pack $(WITH_PACK))

# Build, install the .deb into a temporary root, --self-test it, open its window under Xvfb.
smoke-bundle: $(VENV)/.installed-dev
	$(BIN)/python packaging/smoke_test.py --flavour $(FLAVOUR)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
