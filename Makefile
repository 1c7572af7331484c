# convd: `make run` serves on 127.0.0.1:8080, `make test` runs every test. Both first install
# the Debian packages that are missing (and only those).
#
# Sections, each named for what it builds: the Debian packages and the flags they give; libconvd.a,
# convd and the test binaries (a release and a sanitized tree); make test; fuzz targets;
# benchmarks; the deployment and fresh-machine tests. A target's prerequisites are all on its
# own rule.
.DEFAULT_GOAL := all
.PHONY: all deps run test test-unit test-asan bench bench-deps clean

# ---- Debian packages: what each target needs, installed when missing ------------------------
# convd itself (DEBS: what `make run` and the image's build stage need); the tests (TEST_DEBS:
# libcurl for the HTTP tests, the example clients' runtimes, clang's libFuzzer, Chromium for the
# playground); the bench peers (BENCH_DEBS); the deployment tests (DEPLOY_DEBS).
DEBS       := gcc make pkg-config libopenblas-dev libmicrohttpd-dev libcjson-dev zlib1g-dev
# Node.js with npm runs the OpenAPI linter and the JavaScript example: Debian's nodejs and npm,
# unless an npm is already there (NodeSource's nodejs bundles it and conflicts with Debian's npm,
# so nothing is installed over it).
NODE_DEBS  := $(if $(shell command -v npm),,nodejs npm)
TEST_DEBS  := libcurl4-openssl-dev curl python3 python3-numpy python3-requests clang-14 \
              libclang-rt-14-dev chromium $(NODE_DEBS)
BENCH_DEBS := python3-torch libdnnl-dev wrk python3-matplotlib
# catatonit (the pause process of `podman kube play`'s pods) and netavark (its network stack) are
# only Recommends of podman, which --no-install-recommends leaves out.
DEPLOY_DEBS := podman runc catatonit netavark debootstrap nginx wrk openssl curl python3 python3-yaml
SUDO       := $(if $(filter 0,$(shell id -u)),,sudo)

# $(call install_missing,PACKAGES): apt-get installs those of PACKAGES that are not installed.
define install_missing
missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
  | grep -q 'ok installed' || echo $$p; done); \
if [ -n "$$missing" ]; then echo "installing missing Debian packages:" $$missing; \
  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
  $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; fi
endef
.PHONY: test-deps deploy-deps
deps:
	@$(call install_missing,$(DEBS))
test-deps: deps
	@$(call install_missing,$(TEST_DEBS))
bench-deps: deps
	@$(call install_missing,$(BENCH_DEBS))
deploy-deps: deps
	@$(call install_missing,$(DEPLOY_DEBS))

# ---- Compiler and flags ----------------------------------------------------------------------
# The libraries' flags come from pkg-config, which can only answer once the packages are
# installed: build/config.mk is made by installing what is missing and then asking pkg-config,
# and make reads itself again once it is made. So the first command on a fresh machine, whatever
# its target, builds with the right flags. Goals that build nothing do not need it.
PKGS      := libmicrohttpd libcjson openblas zlib
CONFIG    := build/config.mk
NO_CONFIG := clean deps bench-deps test-deps deploy-deps
ifneq ($(if $(MAKECMDGOALS),$(filter-out $(NO_CONFIG),$(MAKECMDGOALS)),all),)
include $(CONFIG)
endif
$(CONFIG): Makefile
	@$(call install_missing,$(DEBS))
	@mkdir -p $(@D)
	@cflags=$$(pkg-config --cflags $(PKGS)) && libs=$$(pkg-config --libs $(PKGS)) && \
	  printf 'PKG_CFLAGS := %s\nPKG_LIBS := %s\n' "$$cflags" "$$libs" >$@.tmp && mv $@.tmp $@

CC      ?= cc
WARN    := -Wall -Wextra -Werror -Wshadow -Wvla -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -pthread -fopenmp-simd $(WARN) -MMD -MP -I. $(PKG_CFLAGS)
LDLIBS  := $(PKG_LIBS) -lm -pthread
# The tests' HTTP client: Debian's libcurl4-openssl-dev (TEST_DEBS), on the default paths.
TESTLIBS := -lcurl
SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# server/http_auth.c (SHA-256 of keys) and server/http_tls.c (checking the certificate) call
# GnuTLS directly; libmicrohttpd-dev already depends on libgnutls28-dev.
LDLIBS += -lgnutls

# ---- libconvd.a, convd, the test harness and the test binaries ------------------------------
# libconvd.a is core/, api/ with its sub-folders, and server/ but main.c. The naive reference
# (core/conv_ref.c) judges the fast path in tests only: it goes into libharness.a, with
# tests/testlib.c and tests/harness/*.c, which every tests/test_*.c links.
LIB_SRC     := $(filter-out core/conv_ref.c,$(wildcard core/*.c api/*.c api/*/*.c)) \
               $(filter-out server/main.c,$(wildcard server/*.c))
HARNESS_SRC := tests/testlib.c $(wildcard tests/harness/*.c) core/conv_ref.c
TEST_SRC    := $(wildcard tests/test_*.c)

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
$(1)/libharness.a: $$(HARNESS_SRC:%.c=$(1)/obj/%.o)
	@rm -f $$@
	ar rcs $$@ $$^
$(1)/tests/%: $(1)/obj/tests/%.o $(1)/libharness.a $(1)/libconvd.a
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS) $(2) $$^ $$(LDLIBS) $$(TESTLIBS) -o $$@
-include $$(shell find $(1)/obj -name '*.d' 2>/dev/null)
endef
# The core's loops may fuse a*b+c into one FMA (one rounding instead of two): more exact, and
# twice the arithmetic per instruction; -std=c11 alone forbids it.
build/obj/core/%.o build/asan/obj/core/%.o: CFLAGS += -ffp-contract=fast
# GET /openapi.yaml and GET / serve the files assembled into this object (.incbin): rebuild it
# with them.
build/obj/server/http_handlers.o build/asan/obj/server/http_handlers.o: api/openapi.yaml \
    server/playground.html
$(eval $(call flavour,build,))
$(eval $(call flavour,build/asan,$(SANITIZE)))

TESTS      := $(TEST_SRC:tests/%.c=build/tests/%)
ASAN_TESTS := $(TEST_SRC:tests/%.c=build/asan/tests/%)

all: deps build/convd

run: all
	./build/convd serve --host 127.0.0.1 --port 8080

clean:
	rm -rf build

# ---- make test: every test binary, release then sanitized -----------------------------------
# First the include graph (tools/check-includes.sh: no cycle, no upward include), then
# tests/run.sh, which prints the closing "N passed, N failed". The example clients' runtimes
# (test-deps) and the fuzz targets (tests/test_fuzz.c runs each briefly) come first; the tests
# compile only once test-deps is in (libcurl's headers), even under make -j.
TEST_DEPS := deps test-deps fuzz-build
$(foreach tree,build build/asan,$(TEST_SRC:%.c=$(tree)/obj/%.o) \
  $(HARNESS_SRC:%.c=$(tree)/obj/%.o)): | test-deps
test: $(TEST_DEPS) build/convd build/asan/convd $(TESTS) $(ASAN_TESTS)
	@tools/check-includes.sh
	@tests/run.sh build build/asan

# make soak: tests/soak_http.c, a mixed load with every hostile client of
# tests/test_http_hostile.c for SOAK_SECONDS (300), RSS and descriptors flat. Not in make test.
.PHONY: soak
soak: deps build/convd build/tests/soak_http
	@CONVD_BIN=build/convd build/tests/soak_http

test-unit: $(TEST_DEPS) build/convd $(TESTS)
	@tools/check-includes.sh
	@tests/run.sh build

test-asan: $(TEST_DEPS) build/asan/convd $(ASAN_TESTS)
	@tests/run.sh build/asan

# ---- Fuzz targets: build/fuzz/fuzz_* ---------------------------------------------------------
# libFuzzer targets fuzz/fuzz_*.c, linked with core/ and api/ built by clang with ASan+UBSan.
# make test runs each briefly (tests/test_fuzz.c); `make fuzz` runs each FUZZ_SECONDS, growing
# build/fuzz/corpus/NAME from the seeds in fuzz/corpus/NAME.
.PHONY: fuzz fuzz-build
FUZZ_CC      := clang-14
FUZZ_FLAGS   := -g -O1 -fno-omit-frame-pointer -Wno-pass-failed -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined
FUZZ_SECONDS ?= 600
FUZZ_SRC     := $(wildcard fuzz/fuzz_*.c)
FUZZ_TARGETS := $(FUZZ_SRC:fuzz/%.c=build/fuzz/%)
FUZZ_LIB_OBJ := $(patsubst %.c,build/fuzz/obj/%.o,$(filter-out server/%,$(LIB_SRC)))
build/fuzz/obj/%.o: %.c | test-deps
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
	  $$t -max_total_time=$(FUZZ_SECONDS) -timeout=2 -malloc_limit_mb=64 -rss_limit_mb=1024 \
	    -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/crashes/$$name- build/fuzz/corpus/$$name fuzz/corpus/$$name \
	    || exit 1; done

# ---- Benchmarks: build/bench/* and make bench -----------------------------------------------
# Each bench/bench_*.c is a program linked with the library and bench/benchlib.c (an archive,
# so a benchmark that does not use it links nothing from it). The oneDNN peer is built apart:
# only it needs -ldnnl and OpenMP, both bench-only.
BENCH_SRC  := $(wildcard bench/bench_*.c)
BENCH_BINS := $(BENCH_SRC:bench/%.c=build/bench/%) build/bench/peer_onednn
build/bench/libbench.a: build/obj/bench/benchlib.o
	@mkdir -p $(@D)
	@rm -f $@
	ar rcs $@ $^
build/bench/bench_%: build/obj/bench/bench_%.o build/libconvd.a build/bench/libbench.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@
build/obj/bench/peer_onednn.o: CFLAGS += -fopenmp
# oneDNN's headers come with the bench peers: installed first, even under make -j.
build/obj/bench/peer_onednn.o: | bench-deps
build/bench/peer_onednn: build/obj/bench/peer_onednn.o build/bench/libbench.a
	$(CC) $(CFLAGS) -fopenmp $^ -ldnnl -o $@

bench: bench-deps build/convd $(BENCH_BINS)
	@bench/run.sh

# ---- The deployment and fresh-machine tests: make test-deploy, make test-fresh ---------------
# make test-deploy (after make test in .ci/run): the image built by podman on a debootstrap base,
# run as a container and as a Kubernetes Deployment (podman kube play), and three convd behind
# nginx under wrk load losing one instance (tests/deploy/run.sh). The base image is cached in
# build/deploy/ and podman's store: the first run takes minutes more (debootstrap).
.PHONY: test-deploy
test-deploy: deploy-deps build/convd
	@tests/deploy/run.sh

# make test-fresh (after make test-deploy in .ci/run): the README's `make run` and `make test`, and
# `make test-deploy`, `make` and `make bench` (on one small layer), each first on a stock Debian 12
# container with nothing but a clone of HEAD (tests/fresh/run.sh). The base image, the downloaded packages, npm's cache and the inner
# podman's images stay in podman's store between runs.
.PHONY: test-fresh
test-fresh: deploy-deps
	@tests/fresh/run.sh
