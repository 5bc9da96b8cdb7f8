# modax-ml — see README.md.
GO      ?= go
BIN     ?= bin/modax-ml
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X github.com/modax/modax-ml/internal/version.Version=$(VERSION) -X github.com/modax/modax-ml/internal/version.Commit=$(COMMIT)

# OpenBLAS through cgo when the library is installed (Debian libopenblas-dev);
# otherwise the pure-Go BLAS. `make BLAS=go` forces the pure-Go build.
ifeq ($(BLAS),)
BLAS := $(shell test -e /usr/lib/x86_64-linux-gnu/libopenblas.so -o -e /usr/lib/aarch64-linux-gnu/libopenblas.so && echo openblas || echo go)
endif
ifeq ($(BLAS),openblas)
TAGS := -tags openblas
export CGO_LDFLAGS := -lopenblas
export CGO_ENABLED := 1
else
TAGS :=
endif

GOLANGCI := $(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
TESTENV  := scripts/testenv.sh
PKGS     := ./...
TESTFLAGS ?= -count=1 -timeout 25m

.PHONY: all build cross run test race e2e lint vet fmt bench bench-predict bench-score bench-train fuzz cover cmapss clean

all: build

build:
	$(GO) build $(TAGS) -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/modax-ml

## run: the built-in default pipeline on the synthetic fleet (no database, no download)
run: build
	./$(BIN) pipeline run

## cross: the binary builds (pure Go) for every platform we ship
CROSS ?= linux/amd64 linux/arm64 darwin/arm64 windows/amd64
cross:
	@for t in $(CROSS); do \
	  echo "cross: $$t"; \
	  GOOS=$${t%/*} GOARCH=$${t#*/} CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/modax-ml || exit 1; \
	done

## test: the whole suite against real PostgreSQL, PyTorch, ONNX Runtime (installed when missing)
test: cross
	$(TESTENV) $(GO) test $(TAGS) $(TESTFLAGS) $(PKGS)

race:
	$(TESTENV) $(GO) test $(TAGS) -race $(TESTFLAGS) $(PKGS)

e2e:
	$(TESTENV) $(GO) test $(TAGS) $(TESTFLAGS) -run 'TestScript' ./cmd/modax-ml

vet:
	$(GO) vet $(TAGS) $(PKGS)

fmt:
	gofmt -l -w $$(git ls-files '*.go')

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1)
	$(GO) vet $(TAGS) $(PKGS)
	$(GOLANGCI) run $(PKGS)

## bench: benchmarks (BENCH=regexp, COUNT=n); results in README "Measured"
BENCH ?= .
COUNT ?= 5
bench:
	$(TESTENV) $(GO) test $(TAGS) -run '^$$' -bench '$(BENCH)' -benchmem -count $(COUNT) -timeout 60m $(PKGS)

## bench-train: the fused engine (pure Go and OpenBLAS) next to PyTorch, same machine, same run
bench-train:
	$(TESTENV) scripts/bench-train.sh

## bench-predict: native forward vs ONNX Runtime (one thread) and `modax-ml predict` end to end
bench-predict:
	scripts/bench-predict.sh

## bench-score: `modax-ml score --readings` end to end, 10 000 and 40 000 devices: devices/s, CPU, peak RSS
bench-score:
	TAGS=$(if $(filter openblas,$(BLAS)),openblas) scripts/bench-score.sh

## cmapss: the C-MAPSS recipe on one subset (CMAPSS_DIR=folder SUBSET=FD001 SEEDS=5); last line: one JSON object
SUBSET ?= FD001
SEEDS  ?= 5
cmapss: build
	@CMAPSS_DIR='$(CMAPSS_DIR)' SUBSET='$(SUBSET)' SEEDS='$(SEEDS)' BIN='$(BIN)' scripts/cmapss.sh

## fuzz: every fuzz target of every package (found by `go test -list`, in the
## packages whose tests declare a `func Fuzz`), each for FUZZTIME (default 1m);
## FUZZ=regexp picks targets. A failure stops it, the crasher saved (not
## minimized: FUZZMINIMIZE, default 0s) under the package's testdata/fuzz/.
FUZZTIME     ?= 1m
FUZZ         ?= .
FUZZMINIMIZE ?= 0s
fuzz:
	@n=0; for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  fs=$$($(GO) test $(TAGS) -list '^Fuzz' $$dir) || { echo "$$fs"; exit 1; }; \
	  for f in $$(echo "$$fs" | grep '^Fuzz' | grep -E -e '$(FUZZ)'); do \
	    echo "fuzz $$dir $$f ($(FUZZTIME))"; \
	    $(GO) test $(TAGS) -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$dir || exit 1; \
	    n=$$((n+1)); \
	  done; \
	done; echo "fuzz: $$n targets, each $(FUZZTIME), no failure"

cover:
	$(TESTENV) $(GO) test $(TAGS) $(TESTFLAGS) -coverprofile=coverage.out $(PKGS)
	$(GO) tool cover -func=coverage.out | tail -n 1

clean:
	rm -rf bin coverage.out
