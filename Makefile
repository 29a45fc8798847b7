# make run   - build the release module, start redis-server with it on 127.0.0.1:6380
# make test  - unit tests and integration tests against real redis-server processes
# make bench - throughput against native GET (bench/results.md, bench/results.png)
#              and instructions per request (bench/instructions.md)

CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
SO := target/release/libredis_mmap.so

.PHONY: all deps build run test bench fmt clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	$(CARGO) build --release --lib

# Redis chdirs to ./data (see redis.conf.example): the RDB lives there, and
# mmap.dir, which defaults to the working directory, is ./data too.
run: build
	mkdir -p data
	redis-server redis.conf.example --loadmodule $(abspath $(SO))

RUN_TESTS = if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --no-fail-fast; \
	else \
		$(CARGO) test --no-fail-fast; \
	fi

# Every test runs against Debian's Redis 7.0, then the integration tests
# against Valkey 9 (REDIS_SERVER points the harness at another server).
test: build
	$(CARGO) build --examples
	# The panic tests load target/debug/libredis_mmap.so built with MMAP.PANIC.
	$(CARGO) build --lib --features fault-injection
	@$(RUN_TESTS)
	@echo "--- the same tests against Valkey 9"
	@export REDIS_SERVER="$$(bash scripts/valkey.sh)" && $$REDIS_SERVER --version && $(RUN_TESTS)

# Pinned to cores 0 (server) and 1 (redis-benchmark); takes about seven minutes.
bench: build
	@python3 -c "import matplotlib" 2>/dev/null || pip install --quiet matplotlib
	@command -v valgrind >/dev/null || (export DEBIAN_FRONTEND=noninteractive; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends valgrind >/dev/null)
	python3 bench/run.py
	python3 bench/instructions.py

fmt:
	$(CARGO) fmt

clean:
	$(CARGO) clean
