VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: bench test setup clean train

setup: $(STAMP)

# torch first and pinned: pip then takes the local CPU wheel instead of a CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

bench: $(STAMP)
	$(PY) -m bench run --models models.yaml --out reports

# Trained entries in dependency order (MLM before the contrastive model built on it; `bench train` would also build
# a missing base itself), then the benchmark: the base, BM25 and the hybrid on thquad_dev (their rows on the other
# tasks come from `make bench`), the trained encoders and the re-ranking pipelines on every task. Three timing rounds
# instead of five keep the whole target near two hours on two cores. The Turkish-trimmed vocabularies come last:
# no gradient steps (a minute or two each), and the contrastive one is built from the contrastive model above.
GRADIENT := "e5-small MLM-adapted" "e5-small contrastive" "e5-small MLM+contrastive"
TRIMMED := "e5-small Turkish-trimmed" "e5-small contrastive Turkish-trimmed"
ENCODERS := $(GRADIENT) $(TRIMMED)
TRAINED := $(GRADIENT) "e5-small cross-encoder (trained)" $(TRIMMED)
TRAIN_TASKS := tr_mini_wiki xquad_tr drug_leaflets thquad_dev
BASELINES := "multilingual-e5-small (Q4-dequantized)" "BM25 (Turkish Snowball)" "Hybrid RRF (BM25 + e5-small)"

train: $(STAMP)
	for name in $(TRAINED); do $(PY) -m bench train "$$name" --models models.yaml || exit $$?; done
	$(PY) -m bench run --models models.yaml --out reports --rounds 3 --tasks thquad_dev --only $(BASELINES) \
		--variants torch-fp32 onnx-int8 bm25s bm25s+onnx-int8
	$(PY) -m bench run --models models.yaml --out reports --rounds 3 --tasks $(TRAIN_TASKS) --only $(ENCODERS) \
		"BM25 → trained cross-encoder (top 20)" "Hybrid RRF → trained cross-encoder (top 20)"
	$(PY) -m bench report --training-only --models models.yaml --out reports

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
