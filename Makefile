# Darter — common tasks. `make run` builds a release binary and serves on port 6379;
# `make test` runs every test (unit, integration, differential against redis-server), then
# the unit and integration tests again with debug assertions and overflow checks on.

CARGO ?= cargo
PORT ?= 6379
ARGS ?=

.PHONY: run build release test test-ci unit lint bench fuzz miri perf chaos clean

run: release
	./target/release/darter --port $(PORT) --logtostderr $(ARGS)

build:
	$(CARGO) build

release:
	$(CARGO) build --release

# The whole suite on the release build, then the unit and integration tests once more
# on the `ci` profile (release + debug assertions + overflow checks, Cargo.toml), which
# starts target/ci/darter, so every `debug_assert!` runs under the real workload.
test:
	$(CARGO) build --release --bins
	$(CARGO) test --release -- --test-threads=2
	$(MAKE) test-ci

# Only the second pass of `make test`.
test-ci:
	$(CARGO) test --profile ci --lib --bins --tests -- --test-threads=2

unit:
	$(CARGO) test --lib

# Formatting (rustfmt.toml), then clippy with the [lints] table of Cargo.toml,
# warnings as errors (run by .ci/run).
lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings

bench:
	$(CARGO) bench

fuzz:
	cd fuzz && $(CARGO) +nightly fuzz run resp_parse -- -max_total_time=120

# Miri over the unsafe data structures (the SPSC ring and the Dash table).
miri:
	$(CARGO) +nightly miri test --lib -- spsc dash compact

perf: release
	./perf/bench_strings.sh

clean:
	$(CARGO) clean
