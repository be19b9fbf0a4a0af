# The two commands of the README: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: run test lint install bench clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[embedded,fast,test]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

## run: soko with an embedded PostgreSQL and Redis under ./var (or the servers SOKO_*_URL name)
run: $(STAMP)
	$(BIN)/soko dev

## test: lint, then the whole suite against real PostgreSQL and Redis
test: $(STAMP) lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## bench: soko against the same work written by hand (benchmarks/README.md); wrk comes from Debian's packages
bench: $(STAMP)
	@command -v wrk >/dev/null || ! command -v apt-get >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk; }
	$(BIN)/python benchmarks/bench_side_by_side.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
