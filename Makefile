# ftbackup — the two commands a new machine needs are `make demo` and `make test`.
SHELL := /bin/bash
SWIFT ?= swift
SCRATCH := .scratch
BIN := .build/debug/ftbackup
RELEASE_BIN := .build/release/ftbackup
SEED_SCALE ?= 2
BENCH_SCALE ?= 200
PRUNE_ROWS ?= 10000000

.PHONY: all deps build release test demo bench bench-prune clean stop

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# Unit and integration tests against a scratch cluster and a loopback S3 server (moto) of their own,
# both stopped afterwards (even on failure).
test: build
	SCRATCH_PG_FAST=1 bash scripts/scratch-pg.sh run $(SCRATCH)/test bash scripts/scratch-s3.sh run $(SCRATCH)/test-s3 bash scripts/run-tests.sh

# The main job end to end on a throwaway cluster with a generated Fast Track database.
demo: release
	SCRATCH_PG_FAST=1 bash scripts/scratch-pg.sh run $(SCRATCH)/demo bash scripts/demo.sh $(RELEASE_BIN) $(SEED_SCALE)

# Speed and memory against pg_dump / pg_restore / psql COPY | zstd on a ~1 GB database.
bench: release
	bash scripts/scratch-pg.sh run $(SCRATCH)/bench bash scripts/bench.sh $(RELEASE_BIN) $(BENCH_SCALE)

# prune-audit on a partitioned audit log of PRUNE_ROWS rows: whole-partition drops against row batches.
bench-prune: release
	bash scripts/scratch-pg.sh run $(SCRATCH)/bench bash scripts/bench-prune.sh $(RELEASE_BIN) $(PRUNE_ROWS)

stop:
	-@for d in $(SCRATCH)/*/; do bash scripts/scratch-pg.sh stop $$d; done

clean: stop
	rm -rf $(SCRATCH) .build
