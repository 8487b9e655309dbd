# truthgpt — the two commands of a new user:
#   make demo   installs what is missing, builds, trains on the bundled data, samples
#   make test   installs what is missing, builds (also with sanitizers), runs every test
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all build setup setup-test test test-fast demo bench fuzz clean

all: build

setup:
	@bash scripts/setup.sh

setup-test:
	@bash scripts/setup.sh --test

build: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release > $(BUILD).cmake.log 2>&1 || (cat $(BUILD).cmake.log; exit 1)
	@grep -E '✓|✗' $(BUILD).cmake.log || true
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: setup
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTG_SANITIZE=ON -DTG_FUZZ=ON -DTG_CUDA=OFF -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ > build-asan.cmake.log 2>&1 || (cat build-asan.cmake.log; exit 1)
	@cmake --build build-asan -j $(JOBS)

test: setup-test
	@bash tests/run_all.sh

demo: build
	@bash scripts/demo.sh

# Training speed, ours and PyTorch's side by side (bench/README.md);
# BENCH_PRESETS="small gpt2", DTYPES="fp32 bf16", STEPS=10 override.
BENCH_PRESETS ?= small
bench: build
	@TRUTHGPT=$(BUILD)/truthgpt bash bench/compare_train.sh $(BENCH_PRESETS)

# Every parser of outside input under libFuzzer with ASan+UBSan, FUZZ_SECONDS
# each (tests/fuzz/README.md); exits non-zero on a crash.
FUZZ_SECONDS ?= 60
fuzz: setup
	@cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release -DTG_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ > build-fuzz.cmake.log 2>&1 || (cat build-fuzz.cmake.log; exit 1)
	@cmake --build build-fuzz -j $(JOBS) --target fuzz_all
	@bash tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) build-asan build-valgrind build-fuzz *.cmake.log build-valgrind.build.log
