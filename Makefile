# tide's build, test and lint targets. `make help` lists them.
GO ?= go
PKGS := ./...

.PHONY: help build test test-deps lint bench fuzz run clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build bin/tide
	$(GO) build -o bin/tide ./cmd/tide

test-deps: ## install what the tests need (Debian packages, Go modules)
	./scripts/install-test-deps

test: test-deps lint ## install test dependencies, lint, and run every test with -race
	$(GO) test -race -count=1 -timeout 25m $(PKGS)

lint: ## gofmt, go vet and the dependency-direction check
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) test -count=1 ./internal/layering/

bench: ## run the Go benchmarks
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

fuzz: ## fuzz the schedule parser for a minute
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./config/

run: build ## the service on the demo fleet: local cloud, synthetic load, clock 120x
	./bin/tide serve -c examples/demo.yaml --speed 120

clean: ## remove build output
	rm -rf bin
