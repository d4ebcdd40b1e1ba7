# phiguard: one command for the tests (make test), one for the linters (make lint).
# Everything the tests need is installed from here on a fresh machine.

GO       ?= go
BIN      := $(CURDIR)/bin
export GOBIN := $(BIN)

GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT         := $(BIN)/golangci-lint

AZURITE_DIR := internal/testenv/azurite
AZURITE     := $(AZURITE_DIR)/node_modules/.bin/azurite-blob

# Test binaries run in parallel packages; 30 minutes is a hang, not a slow test.
TEST_FLAGS ?= -race -count=1 -timeout 30m
BENCH      ?= .

.PHONY: all test lint bench deps fmt tidy clean

all: lint test

## test: install test dependencies, then run every test with the race detector.
test: deps
	PHIGUARD_REQUIRE_AZURITE=1 $(GO) test $(TEST_FLAGS) ./...

## deps: everything the tests need that Go modules do not bring.
deps: $(AZURITE)

$(AZURITE): $(AZURITE_DIR)/package.json $(AZURITE_DIR)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { apt-get update && apt-get install -y --no-install-recommends nodejs npm; }
	npm ci --prefix $(AZURITE_DIR) --no-audit --no-fund --loglevel=error
	@touch $@

## lint: gofmt, go vet and golangci-lint (errcheck, govet, staticcheck, gosec, ...).
lint: $(GOLANGCI_LINT)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	$(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

## bench: run every benchmark once and print its figures.
bench: deps
	PHIGUARD_REQUIRE_AZURITE=1 $(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count=1 -timeout 60m ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

tidy:
	$(GO) mod tidy

clean:
	rm -rf $(BIN) $(AZURITE_DIR)/node_modules
