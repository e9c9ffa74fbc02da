# Thin wrapper over CMake. `make demo` and `make test` are the README's two
# commands; both install missing Debian packages first (tools/setup-deps.sh).
# `make install PREFIX=P` installs the library (cmake --install).
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= 2
MAKEFLAGS += --no-print-directory
CMAKE_FLAGS ?=
PREFIX ?= /usr/local

.PHONY: all deps build demo test test-asan install install-test fuzz-ci format format-check clean

all: build

deps:
	@tools/setup-deps.sh

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	$(BUILD)/bin/kiln dump-ir examples/attention.kir
	$(BUILD)/bin/kiln run examples/attention.kir --backend ref --outputs $(BUILD)/attention_out.safetensors --print
	$(BUILD)/bin/attention

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DKILN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS) >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j$(JOBS)

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# Installs into a temporary prefix and builds and runs examples/ against it
# out of tree, with pkg-config and with find_package(kiln).
install-test: build
	tools/install-test.sh $(BUILD)

# Builds the libFuzzer harnesses with clang-19 (build-fuzz/) and runs each
# for about 60 s; fails on any finding (tools/fuzz-ci.sh).
fuzz-ci: deps
	tools/fuzz-ci.sh $(CMAKE_FLAGS)

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

format-check:
	git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
