# darktime — see README.md. `make help` lists the targets.
GO        ?= go
BIN       := bin/darktime
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION := v0.8.2

.DEFAULT_GOAL := help

.PHONY: help build run serve test test-short check bench bench-go bench-fanout bench-hooks bench-shadow bench-proxy bench-cluster fmt deps

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/darktime
	$(GO) build -o $(BIN) ./cmd/darktime

run: build ## the full demo: steady-state on embedded defaults with a 10% shadow candidate (~2 min, no Redis)
	@# The demo shows the verdict; a failed gate (exit 1) does not fail make, since the swarm, the
	@# server, the proxy and the candidate share this machine's cores. Bad input (2) still does.
	./$(BIN) run --embedded --shadow 10 --clients 1000 --time-scale 0.25 scenarios/steady-state.yaml; \
	  status=$$?; if [ $$status -eq 1 ]; then echo "(make run: the verdict above is the demo's; darktime run exits 1 on a failed gate)"; exit 0; fi; exit $$status

serve: build ## the reference server alone, with a demo publisher and page on :8080
	./$(BIN) server --demo

deps: ## install what the tests need (redis-server from Debian's packages)
	@./scripts/ensure-deps.sh

test: deps build ## all tests (race detector, private redis-servers), then the ci-smoke scenario as a performance gate
	$(GO) test -race -count=1 -timeout 15m ./...
	@# The canary's rollouts judge delays of a few ms, which the race detector's stalls swamp: they
	@# skip under -race and run here without it.
	$(GO) test -count=1 -timeout 5m -run 'TestRollout' ./canary/
	./$(BIN) run --quiet scenarios/ci-smoke.yaml

test-short: ## the quick loop: go test -short (long tests skipped, no race detector, about a minute)
	$(GO) test -short -count=1 ./...

check: deps ## gofmt, go vet, staticcheck, go test -race
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@command -v staticcheck >/dev/null 2>&1 || test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	PATH="$(GOBIN):$$PATH" staticcheck ./...
	$(GO) test -race -count=1 -timeout 15m ./...

bench: bench-go bench-fanout bench-hooks ## Go micro-benchmarks and the fan-out and hook pipeline load benchmarks

bench-go: ## Go micro-benchmarks (encoding, fan-out) with -count 6 for benchstat
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./... | tee bench-go.txt

bench-fanout: build ## 10,000 SSE subscribers, server on core 0, load on core 1: the floor, darktime and nginx + nchan in alternating rounds, with ratios (see BENCHMARKS.md)
	./scripts/bench-fanout.sh all

bench-hooks: ## hooks → Redis queue → 2 workers → SSE: jobs/s and p99 at 5,000 jobs/s (private Redis)
	./scripts/bench-hooks.sh

bench-cluster: ## one Redis vs a 3-master Redis Cluster: cross-node fan-out and hooks, interleaved; then a master's failover timed (see BENCHMARKS.md)
	./scripts/bench-cluster.sh
	KINDS="one cluster" ./scripts/bench-hooks.sh
	./scripts/bench-failover.sh

bench-shadow: ## the shadow proxy in mirror mode against the reference server alone (see BENCHMARKS.md)
	./scripts/bench-shadow.sh

bench-proxy: ## what the shadow proxy costs per relayed event against a one-read-one-write relay, and the p99 it adds (see BENCHMARKS.md)
	./scripts/bench-proxy.sh

fmt: ## gofmt the tree
	gofmt -w .
