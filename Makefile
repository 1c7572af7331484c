# convd: `make run` serves on 127.0.0.1:8080, `make test` runs every test. Both first install
# the Debian packages that are missing (and only those).
.DEFAULT_GOAL := all
.PHONY: all deps run test test-unit test-asan bench bench-deps clean

# Debian packages the build and the tests need; bench peers are separate (bench-deps).
DEBS       := gcc make pkg-config libopenblas-dev libmicrohttpd-dev libcjson-dev python3-numpy \
              libcurl4-openssl-dev zlib1g-dev python3
BENCH_DEBS := python3-torch libdnnl-dev wrk python3-matplotlib
SUDO       := $(if $(filter 0,$(shell id -u)),,sudo)

PKGS    := libmicrohttpd libcjson openblas zlib
CC      ?= cc
WARN    := -Wall -Wextra -Werror -Wshadow -Wvla -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -pthread -fopenmp-simd $(WARN) -MMD -MP -I. \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -pthread
TESTLIBS := $(shell pkg-config --libs libcurl 2>/dev/null)
SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRC  := $(wildcard core/*.c api/*.c) $(filter-out server/main.c,$(wildcard server/*.c))
TEST_SRC := $(wildcard tests/test_*.c)
BENCH_SRC := $(wildcard bench/bench_*.c)

# One build tree per flavour: build/ (release) and build/asan/ (AddressSanitizer + UBSan).
define flavour
$(1)/obj/%.o: %.c
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS) $(2) -c $$< -o $$@
$(1)/libconvd.a: $$(LIB_SRC:%.c=$(1)/obj/%.o)
	@rm -f $$@
	ar rcs $$@ $$^
$(1)/convd: $(1)/obj/server/main.o $(1)/libconvd.a
	$$(CC) $$(CFLAGS) $(2) $$^ $$(LDLIBS) -o $$@
$(1)/tests/%: $(1)/obj/tests/%.o $(1)/obj/tests/testlib.o $(1)/libconvd.a
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS) $(2) $$^ $$(LDLIBS) $$(TESTLIBS) -o $$@
-include $$(shell find $(1)/obj -name '*.d' 2>/dev/null)
endef
# The core's loops may fuse a*b+c into one FMA (one rounding instead of two): more exact, and
# twice the arithmetic per instruction; -std=c11 alone forbids it.
build/obj/core/%.o build/asan/obj/core/%.o: CFLAGS += -ffp-contract=fast
$(eval $(call flavour,build,))
$(eval $(call flavour,build/asan,$(SANITIZE)))

TESTS      := $(TEST_SRC:tests/%.c=build/tests/%)
ASAN_TESTS := $(TEST_SRC:tests/%.c=build/asan/tests/%)

all: deps build/convd

deps:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	  | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing missing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi

run: all
	./build/convd serve --host 127.0.0.1 --port 8080

# Every test binary, release then sanitized; tests/run.sh prints the closing "N passed, N failed".
test: deps build/convd build/asan/convd $(TESTS) $(ASAN_TESTS)
	@tests/run.sh build build/asan

test-unit: deps build/convd $(TESTS)
	@tests/run.sh build

test-asan: deps build/asan/convd $(ASAN_TESTS)
	@tests/run.sh build/asan

bench-deps: deps
	@$(MAKE) --no-print-directory DEBS="$(BENCH_DEBS)" deps

# Benchmarks: each bench/bench_*.c is a program linked with the library and bench/benchlib.c
# (an archive, so a benchmark that does not use it links nothing from it). The oneDNN peer is
# built apart: only it needs -ldnnl and OpenMP, both bench-only.
BENCH_BINS := $(BENCH_SRC:bench/%.c=build/bench/%) build/bench/peer_onednn
build/bench/libbench.a: build/obj/bench/benchlib.o
	@mkdir -p $(@D)
	@rm -f $@
	ar rcs $@ $^
build/bench/bench_%: build/obj/bench/bench_%.o build/libconvd.a build/bench/libbench.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@
build/obj/bench/peer_onednn.o: CFLAGS += -fopenmp
build/bench/peer_onednn: build/obj/bench/peer_onednn.o build/bench/libbench.a
	$(CC) $(CFLAGS) -fopenmp $^ -ldnnl -o $@

bench: bench-deps build/convd $(BENCH_BINS)
	@bench/run.sh

clean:
	rm -rf build

# make soak: tests/soak_http.c, a mixed load with every hostile client of
# tests/test_http_hostile.c for SOAK_SECONDS (300), RSS and descriptors flat. Not in make test.
.PHONY: soak
soak: deps build/convd build/tests/soak_http
	@CONVD_BIN=build/convd build/tests/soak_http

# ---- Binary doors, v2, examples and fuzzing (issue 5) ----------------------------------------
# What their tests need beyond DEBS: the example clients' runtimes and clang's libFuzzer.
BINARY_TEST_DEBS := curl nodejs python3-numpy python3-requests clang-14 libclang-rt-14-dev
.PHONY: binary-test-deps fuzz fuzz-build
binary-test-deps: deps
	@$(MAKE) --no-print-directory DEBS="$(BINARY_TEST_DEBS)" deps

# GET /openapi.yaml serves the file assembled into this object (.incbin): rebuild it with it.
build/obj/server/http_front.o build/asan/obj/server/http_front.o: api/openapi.yaml

# libFuzzer targets fuzz/fuzz_*.c, linked with core/ and api/ built by clang with ASan+UBSan.
# make test runs each briefly (tests/test_fuzz.c); `make fuzz` runs each FUZZ_SECONDS, growing
# build/fuzz/corpus/NAME from the seeds in fuzz/corpus/NAME.
FUZZ_CC      := clang-14
FUZZ_FLAGS   := -g -O1 -fno-omit-frame-pointer -Wno-pass-failed -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined
FUZZ_SECONDS ?= 600
FUZZ_SRC     := $(wildcard fuzz/fuzz_*.c)
FUZZ_TARGETS := $(FUZZ_SRC:fuzz/%.c=build/fuzz/%)
FUZZ_LIB_OBJ := $(patsubst %.c,build/fuzz/obj/%.o,$(wildcard core/*.c api/*.c))
build/fuzz/obj/%.o: %.c | binary-test-deps
	@mkdir -p $(@D)
	$(FUZZ_CC) $(filter-out -Werror,$(CFLAGS)) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
build/fuzz/fuzz_%: build/fuzz/obj/fuzz/fuzz_%.o $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $^ $(LDLIBS) -o $@
-include $(shell find build/fuzz/obj -name '*.d' 2>/dev/null)
.SECONDARY: $(FUZZ_LIB_OBJ) $(FUZZ_SRC:%.c=build/fuzz/obj/%.o)
fuzz-build: $(FUZZ_TARGETS)
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do name=$${t#build/fuzz/fuzz_}; \
	  mkdir -p build/fuzz/corpus/$$name build/fuzz/crashes; \
	  echo "== $$t for $(FUZZ_SECONDS) s"; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/crashes/$$name- build/fuzz/corpus/$$name fuzz/corpus/$$name \
	    || exit 1; done

# The hook into make test (and its two halves): the example clients' runtimes and the fuzz
# targets are there before the tests run.
test test-unit test-asan: binary-test-deps fuzz-build

# ---- Deployment: API keys, TLS, the container image, scale-out (issue 7) --------------------
# server/http_auth.c (SHA-256 of keys) and server/http_tls.c (checking the certificate) call
# GnuTLS directly; libmicrohttpd-dev already depends on libgnutls28-dev.
LDLIBS += -lgnutls

# make test-deploy (after make test in .ci/run): the image built by podman on a debootstrap base,
# run as a container and as a Kubernetes Deployment (podman kube play), and three convd behind
# nginx under wrk load losing one instance (tests/deploy/run.sh). The base image is cached in
# build/deploy/ and podman's store: the first run takes minutes more (debootstrap).
DEPLOY_DEBS := podman runc debootstrap nginx wrk openssl curl python3 python3-yaml
.PHONY: test-deploy deploy-deps
deploy-deps: deps
	@$(MAKE) --no-print-directory DEBS="$(DEPLOY_DEBS)" deps
test-deploy: deploy-deps build/convd
	@tests/deploy/run.sh
