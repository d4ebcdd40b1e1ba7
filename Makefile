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

.PHONY: all test lint bench deps apt-tools fmt tidy clean

all: lint test

# Tools the tests require; each PHIGUARD_REQUIRE_* turns a missing one from a
# skip into a failure, so nothing is skipped silently under make test.
REQUIRE := PHIGUARD_REQUIRE_AZURITE=1 PHIGUARD_REQUIRE_PODMAN=1 PHIGUARD_REQUIRE_SCRIPT_TOOLS=1
# The 1 GiB storage stream also through Azurite (the folder back end always runs it).
TEST_ENV := PHIGUARD_STORAGE_BIG_BLOB=1

# Debian packages: podman and friends for the container test (busybox-static
# makes its stand-in builder image), shellcheck and envsubst for scripts/.
APT_TOOLS := podman:podman buildah:buildah runc:runc busybox:busybox-static shellcheck:shellcheck envsubst:gettext-base

## test: install test dependencies, then run every test with the race detector.
test: deps
	$(REQUIRE) $(TEST_ENV) $(GO) test $(TEST_FLAGS) ./...

## deps: everything the tests need that Go modules do not bring.
deps: $(AZURITE) apt-tools

apt-tools:
	@missing=""; for t in $(APT_TOOLS); do command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

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
	$(REQUIRE) $(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count=1 -timeout 60m ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

tidy:
	$(GO) mod tidy

clean:
	rm -rf $(BIN) $(AZURITE_DIR)/node_modules
