# A thin layer over CMake. `make test` and `make demo` install what is missing first.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 20

.PHONY: all deps dashboard-deps build test test-unit test-asan lint fuzz demo bench clean

all: build

deps:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory dashboard-deps

# The dashboard's chart library (embedded into the binary) and the browser test's driver, at the
# versions dashboard/package-lock.json pins; installed again only when the lock file changes.
dashboard-deps:
	@command -v npm >/dev/null 2>&1 || { echo "deps: npm is missing; it installs the dashboard's" \
		"pinned chart library (dashboard/package-lock.json). Install Node.js and npm." >&2; exit 1; }
	@if [ ! -f dashboard/node_modules/.package-lock.json ] || \
		[ dashboard/package-lock.json -nt dashboard/node_modules/.package-lock.json ]; then \
		echo "deps: npm ci in dashboard/" >&2; \
		cd dashboard && npm ci --no-audit --no-fund --loglevel=error; \
	fi

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build -j $(JOBS)

# Warnings are errors in both builds; the second one runs every test under ASan + UBSan.
test: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build -j $(JOBS)
	cd build && ctest --output-on-failure -j $(JOBS)
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTL_SANITIZE=ON >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)
	scripts/lint.sh build
	scripts/fuzz.sh $(FUZZ_SECONDS)

lint: build
	scripts/lint.sh build

fuzz: deps
	scripts/fuzz.sh $(FUZZ_SECONDS)

demo: build
	scripts/demo.sh

clean:
	rm -rf build build-asan build-fuzz
