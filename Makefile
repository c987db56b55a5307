VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: bench bench-all test setup clean train train-full wheels scale

setup: $(STAMP)

# torch first and pinned: pip then takes the local CPU wheel instead of a CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# sadedegel's word vectors are read out of its wheel (its own pins do not install on Python 3.11): fetched into the
# cache, not installed. Offline, the entry is skipped with this same command as the fix. Keep the version in step
# with models.yaml's sadedegel entry.
SADEDEGEL := 0.21.2

wheels: $(STAMP)
	@dir="$$($(PY) -c 'from bench.models.static import wheels_dir; print(wheels_dir())')"; \
	test -f "$$dir/sadedegel-$(SADEDEGEL)-py3-none-any.whl" || \
	$(PY) -m pip download -q --no-deps --retries 1 --timeout 30 -d "$$dir" sadedegel==$(SADEDEGEL) || \
	echo "warning: sadedegel wheel not downloaded; its entry will be skipped"

# The default profile of models.yaml: the shortlist, about 10 minutes from an empty cache on two cores.
bench: $(STAMP) wheels
	$(PY) -m bench run --models models.yaml --profile default --out reports

# Every candidate in every variant (about 50 minutes from an empty cache on two cores).
bench-all: $(STAMP) wheels
	$(PY) -m bench run --models models.yaml --out reports

# Trained entries in dependency order (MLM before the contrastive model built on it; `bench train` would also build
# a missing base itself), then their benchmark. Sized for two cores: the base, BM25 and the hybrid are scored on
# thquad_dev only (their rows on the other tasks come from `make bench`); the trained encoders' quality on every task,
# untimed (same architecture and runtimes as the base, whose timings `make bench` measures); the re-ranking pipelines
# on 60 seeded questions of drug_leaflets and thquad_dev, timed in 3 rounds (a 12-layer cross-encoder scores a few
# pairs per second here); the static models timed beside BM25, the other sub-millisecond row, on every task (else
# thquad_dev's recommendation could only weigh static rows). The Turkish-trimmed vocabularies come last: no gradient
# steps (a minute or two each), and the contrastive one is built from the contrastive model above.
# Each scored variant of a 12-layer encoder costs about 3.3 min here, so not every model gets every variant: the two
# contrastive models (the ablation) both; the MLM-only stage torch-fp32 (an intermediate, nobody ships it); the
# trimmed vocabularies onnx-int8 (they exist to shrink the shipped int8 form; in torch-fp32 a text whose pieces all
# survive embeds bit for bit as untrimmed). `make bench` scores the variants models.yaml names that are left.
# The names live in models.yaml's profiles (train, train-baselines, ... train-rerankers); this target says how each is
# run. The topic-disjoint ablation (models.yaml "era held out"; bench/data/split.py): the same recipes built without
# the 1792-1922 thquad file and scored on it (task thquad_1792_1922, all 246 thquad paragraphs searched), beside
# their bases. The shipped entries above read that file, so they are not scored there; their models.yaml
# `unseen_topics` verdict comes from these rows. The contrastive twin costs what the contrastive model does (50 MNRL
# steps); the static and trimmed ones minutes, the merge seconds. The merge and the shipped static chain's twins are
# built from the contrastive twin (bench train builds it first).
TRAIN_TASKS := tr_mini_wiki xquad_tr drug_leaflets thquad_dev
RERANK_TASKS := drug_leaflets thquad_dev
DISJOINT_TASK := thquad_1792_1922
RUN := $(PY) -m bench run --models models.yaml --out reports

train: $(STAMP) wheels
	$(PY) -m bench train --profile train --models models.yaml
	$(RUN) --no-speed --tasks thquad_dev $(DISJOINT_TASK) --profile train-baselines \
		--variants torch-fp32 onnx-int8 bm25s bm25s+onnx-int8
	$(RUN) --no-speed --tasks $(DISJOINT_TASK) --profile train-held-out --variants torch-fp32 numpy-fp32
	$(RUN) --no-speed --tasks $(TRAIN_TASKS) --profile train-contrastive
	$(RUN) --no-speed --tasks $(TRAIN_TASKS) --profile train-mlm --variants torch-fp32
	$(RUN) --no-speed --tasks $(TRAIN_TASKS) --profile train-trimmed --variants onnx-int8
	$(RUN) --rounds 3 --tasks $(TRAIN_TASKS) --profile train-static
	$(RUN) --rounds 3 --tasks $(RERANK_TASKS) --profile train-rerankers
	$(PY) -m bench report --training-only --models models.yaml --out reports

# The full-size recipes and the layer-pruned students: minutes on a GPU (`bench train` uses one when torch sees it),
# hours on two cores. Without a GPU here, README "Training on a GPU machine" trains them elsewhere and brings them
# back (bench.train.transfer); this target then finds them built and only scores them.
# The names: models.yaml's profiles train-full (built), train-full-encoders, train-full-timed, train-full-rerankers.

# Quality on every task; speed on drug_leaflets only (the timings do not depend on the task much, and each timed
# variant costs minutes on two cores), with the base and BM25 timed in the same run for the students' comparison.
# The (full) re-ranking pipelines read every question of their two tasks and are timed in 3 rounds: on two cores
# about 55 min of cross-encoder scoring the first time (drug_leaflets 19, thquad_dev 36), then cached by pair.
train-full: $(STAMP) wheels
	$(PY) -m bench train --profile train-full --models models.yaml
	$(RUN) --no-speed --tasks $(TRAIN_TASKS) --profile train-full-encoders
	$(RUN) --rounds 3 --tasks drug_leaflets --profile train-full-timed
	$(RUN) --rounds 3 --tasks $(RERANK_TASKS) --profile train-full-rerankers
	$(PY) -m bench report --models models.yaml --out reports

# The corpus-size sweep (bench scale) on drug_leaflets, into reports/scale.{json,md} and the plots. Sized for two
# cores: BM25 and the sadedegel static model to 10^6 passages (at 10^6 exact search and IVF-PQ, which trains in a few
# minutes: an HNSW build over a million vectors per precision costs more than the whole sweep here), e5-small int8
# and the hybrid to 10^4 (their encoding runs at 10-30 passages/s here; scale.md gives passages/s x N beyond that,
# marked extrapolated). Each passage is embedded once and cached, so an interrupted run resumes where it stopped.
# Progress bars carry an ETA. Measured end to end from an empty cache: 39.5 min on two cores, the first half shared
# with other jobs (README, "At the size of a real corpus").
# The names: models.yaml's profiles scale-static and scale-dense.
SCALE_TASK := drug_leaflets

scale: $(STAMP) wheels
	$(PY) -m bench scale --task $(SCALE_TASK) --sizes 1000 10000 100000 --profile scale-static --out reports
	$(PY) -m bench scale --task $(SCALE_TASK) --sizes 1000000 --profile scale-static --index exact ivfpq --out reports
	$(PY) -m bench scale --task $(SCALE_TASK) --sizes 1000 10000 --profile scale-dense \
		--variants onnx-int8 bm25s+onnx-int8 --out reports

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
