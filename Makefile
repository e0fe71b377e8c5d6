# extract — build, test, demo. `make demo` and `make test` install what they need.
SHELL := /bin/bash
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
FIXTURES := testdata/fixtures

.PHONY: all build bootstraps test test-short lint bench demo deps fixtures fuzz clean tidy-check

all: build

# System packages and tools the tests and the demo need (apt, pip); idempotent.
deps:
	@bash scripts/install-deps.sh

# Static Lambda bootstraps for both architectures, embedded by `make build`.
bootstraps:
	@mkdir -p pkg/lambda/bootstraps
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '-s -w' -o pkg/lambda/bootstraps/bootstrap-amd64 ./cmd/bootstrap
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '-s -w' -o pkg/lambda/bootstraps/bootstrap-arm64 ./cmd/bootstrap

build: bootstraps
	CGO_ENABLED=0 $(GO) build -trimpath -tags embedbootstrap -ldflags '$(LDFLAGS)' -o $(BIN)/extract ./cmd/extract

# Real fixtures from Debian packages and gfortran (nothing large is committed).
fixtures: deps
	@bash testdata/make-fixtures.sh $(FIXTURES)

# `go test` itself installs nothing: a test missing the fixtures, moto_server,
# gcc or root skips saying how to get them, or fails when CI is set (.ci/run
# sets CI=true; it is passed on to go test here).
test: deps fixtures tidy-check lint bootstraps
	CI=$(CI) EXTRACT_FIXTURES=$(CURDIR)/$(FIXTURES) $(GO) test -race -count=1 -timeout 70m ./...
	# As `make build` and a release build it: bootstraps embedded, no Go needed.
	$(GO) test -count=1 -tags embedbootstrap -run 'TestEmbeddedBootstrapNeedsNoGo' ./pkg/lambda

test-short:
	$(GO) test -short ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@# cmd/extract builds for every system it ships for (invoke refuses to run anywhere but Linux).
	@for t in darwin/amd64 darwin/arm64 windows/amd64 windows/arm64; do \
		echo "GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build ./cmd/extract"; \
		GOOS=$${t%/*} GOARCH=$${t#*/} CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/extract || exit 1; \
	done

tidy-check:
	$(GO) mod tidy -diff

fuzz:
	@bash scripts/fuzz.sh 30s

bench: deps fixtures
	EXTRACT_FIXTURES=$(CURDIR)/$(FIXTURES) bash scripts/bench.sh

demo: deps fixtures build
	@bash examples/fortran-momentum/demo.sh

clean:
	rm -rf $(BIN) pkg/lambda/bootstraps $(FIXTURES)
