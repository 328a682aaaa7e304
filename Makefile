# Edge: build, run and test. `make test` is what CI runs (.ci/run).

GO      ?= go
BIN     := bin
E2E_DIR := e2e
# Test files of the e2e suite (the shell expands the glob: node 20's --test
# does not), run one file at a time: each starts its own servers and Redis,
# and Chromium is heavy on a 2-core machine.
E2E_TESTS ?= test/*.test.mjs

.PHONY: all run build deps fmt-check vet test-go test-e2e fuzz test clean

all: build

run:
	$(GO) run ./cmd/edge

# cmd/edgectl is built once it exists (it is written after cmd/edge).
build:
	$(GO) build -o $(BIN)/edge ./cmd/edge
	$(if $(wildcard cmd/edgectl/*.go),$(GO) build -o $(BIN)/edgectl ./cmd/edgectl,@echo "build: no cmd/edgectl yet, skipped")

deps:
	bash scripts/test-deps.sh

fmt-check:
	@files=$$(git ls-files -co --exclude-standard '*.go'); \
	out=$$([ -z "$$files" ] || gofmt -l $$files); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

test-go: fmt-check vet
	$(GO) test -race -count=1 ./...

# EDGE_BIN tells the suite which binary to start (see e2e/lib/harness.mjs);
# e2e/logs/ keeps the process logs of the last run only.
test-e2e: deps build
	rm -rf $(E2E_DIR)/logs
	cd $(E2E_DIR) && EDGE_BIN=$(CURDIR)/$(BIN)/edge node --test --test-concurrency=1 $(E2E_TESTS)

# Each fuzz target briefly, from its committed seed corpus (testdata/fuzz):
# long enough to catch a regression on the seeds and their neighbours.
FUZZTIME ?= 10s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzMatch$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./edge/auth
	$(GO) test -run '^$$' -fuzz '^FuzzAuthenticate$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./edge/auth
	$(GO) test -run '^$$' -fuzz '^FuzzParseCursor$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./edge

test: deps test-go fuzz test-e2e

clean:
	rm -rf $(BIN) $(E2E_DIR)/logs
