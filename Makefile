# Thin wrapper around CMake: the two commands a new user needs, plus the
# benchmark, install and the Debian package.  `deps` installs the Debian
# packages that are missing.
BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
DEB_BUILD  ?= build-deb
PREFIX     ?= /usr/local
CONFIG     ?= sales.ini
PYTHON     ?= /usr/bin/python3

PACKAGES = build-essential cmake pkg-config libevent-dev libsqlite3-dev libpq-dev \
	libcurl4-openssl-dev libssl-dev libjsmn-dev libwslay-dev libinih-dev liburing-dev \
	libhttp-parser-dev libcmocka-dev sqlite3 python3 python3-pytest \
	python3-websockets python3-jsonschema python3-yaml systemd adduser

BENCH_PACKAGES = wrk nginx-light
TEST_PACKAGES  = chromium fonts-dejavu-core nginx-light haproxy openssl iproute2 \
	postgresql

# libFuzzer harnesses (docs/FUZZING.md): clang and its fuzzer runtime.
FUZZ_BUILD    ?= build-fuzz
FUZZ_TIME     ?= 300
FUZZ_SMOKE    ?= 20
FUZZ_PACKAGES  = clang libclang-rt-14-dev

.PHONY: all deps build run test test-postgres test-unit test-e2e test-sanitize test-fuzz \
	test-tsan test-tools fuzz fuzz-build bench install deb clean

all: build

deps:
	@missing=$$(for p in $(PACKAGES) $(EXTRA_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
		grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$$(nproc)

run: build
	./$(BUILD)/salesd -c $(CONFIG)

test: build test-tools test-sanitize test-tsan test-fuzz test-postgres
	tests/run $(BUILD)
	SALESD_IO_URING=off tests/run $(BUILD) -k test_ws

# The shipped modules' storage tests again, each server on a fresh
# database of a throwaway PostgreSQL instead of its SQLite file.
PG_TESTS = test_orders.py or test_orders_format or test_analytics.py or \
	test_bus_payloads or test_ai_recommend or test_durability or \
	test_storage.py or test_storage_faults or test_schema_modules or \
	test_orders_interface or test_module_contracts
test-postgres: build test-tools
	SALESD_TEST_DRIVER=postgres tests/run $(BUILD) -k '$(PG_TESTS)'

# The browser and API-contract tests drive Debian's chromium and the npm
# tools pinned by tests/package-lock.json (newman, redocly, playwright-core),
# installed into tests/node_modules.  Node.js comes from Debian when the
# machine has none.
test-tools:
	@$(MAKE) --no-print-directory deps EXTRA_PACKAGES="$(TEST_PACKAGES)"
	@command -v npm >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends nodejs npm; }
	cd tests && npm ci --no-audit --no-fund --loglevel=error

test-sanitize: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSALES_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j$$(nproc)
	tests/run $(ASAN_BUILD)

# ThreadSanitizer over the code with threads: the unit tests (the
# WebSocket I/O pool, the storage writer), the WebSocket end-to-end
# tests with two I/O threads, the storage and durability tests.  A
# report in a server's log fails the test (tests/e2e/conftest.py).  The
# RSS-per-client test is left out: TSan's shadow memory is in the RSS.
test-tsan: deps
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSALES_TSAN=ON >/dev/null
	cmake --build $(TSAN_BUILD) -j$$(nproc)
	SALESD_IO_THREADS=2 TSAN_OPTIONS=halt_on_error=1 tests/run $(TSAN_BUILD) \
		-k '(test_ws or test_storage or test_durability or test_feed) and not under_4k'

fuzz-build:
	@$(MAKE) --no-print-directory deps EXTRA_PACKAGES="$(FUZZ_PACKAGES)"
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DSALES_FUZZ=ON >/dev/null
	cmake --build $(FUZZ_BUILD) -j$$(nproc) --target fuzzers

# Every harness for FUZZ_TIME seconds on a temp copy of its corpus.
fuzz: fuzz-build
	FUZZ_KEEP=1 tests/fuzz/run $(FUZZ_BUILD) $(FUZZ_TIME)

# The same, briefly, so that the harnesses cannot rot.
test-fuzz: fuzz-build
	tests/fuzz/run $(FUZZ_BUILD) $(FUZZ_SMOKE)

bench: EXTRA_PACKAGES = $(BENCH_PACKAGES)
bench: build
	tests/bench/run $(BUILD)

# DESTDIR is honoured too: make install PREFIX=/usr DESTDIR=/tmp/stage
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# salesd_<version>_<arch>.deb (with the systemd unit) and
# salesd-postgres_<version>_<arch>.deb (the driver, libpq) in $(DEB_BUILD).
deb: deps
	cmake -S . -B $(DEB_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCMAKE_INSTALL_PREFIX=/usr >/dev/null
	cmake --build $(DEB_BUILD) -j$$(nproc)
	examples/packaging/deb/build $(DEB_BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD) $(DEB_BUILD)
