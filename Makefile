# Paimon Prime Fund backend. `make run` and `make test` install what is missing first.
BUILD    ?= build
CC       ?= gcc
PKGS     := hiredis libpq libevent libevent_pthreads libcjson libcurl libwebsockets openssl \
            libsecp256k1 libargon2 nettle
OPT      ?= -O2
SAN      ?=
CFLAGS   := -std=c11 -Wall -Wextra -Werror $(OPT) -g -D_GNU_SOURCE -iquote libcommon -iquote tests/lib -iquote services $(SAN)
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm

LIB_SRC  := $(wildcard libcommon/*.c)
LIB_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC))
LIB      := $(BUILD)/libcommon.a
SCHEMAS  := $(sort $(wildcard schemas/messages/*.schema.json))
GEN_OBJ  := $(BUILD)/obj/gen/schemas_embedded.o
SERVICES := $(notdir $(patsubst %/,%,$(dir $(wildcard services/*/main.c))))
BINS     := $(patsubst %,$(BUILD)/bin/paimon-%,$(SERVICES))
TLIB_SRC := $(wildcard tests/lib/*.c)
TLIB_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(TLIB_SRC))
TEST_SRC := $(wildcard tests/unit/test_*.c tests/integration/test_*.c)
TESTS    := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCH_SRC:= $(wildcard tests/bench/*_bench.c)
BENCHES  := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

.PHONY: all deps test run stop bench asan valgrind lint clean format tests-bin
# Objects are real products, not intermediates to delete after linking.
.SECONDARY:
all: $(BINS) $(TESTS) $(BENCHES)

deps:
	@deploy/install-deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

# Message schemas are compiled in (see schemas/embed.sh and libcommon/jsonschema.h).
$(BUILD)/gen/schemas_embedded.c: $(SCHEMAS) schemas/embed.sh
	@mkdir -p $(dir $@)
	schemas/embed.sh $@ $(SCHEMAS)

$(GEN_OBJ): $(BUILD)/gen/schemas_embedded.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ) $(GEN_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# A service is every .c file in its folder.
svc_all_objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard services/$(1)/*.c))
.SECONDEXPANSION:
$(BUILD)/bin/paimon-%: $$(call svc_all_objs,$$*) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

# A test may use its service's domain modules (every .c but main.c of services/<svc>/
# for tests named test_<svc>_*.c) and the harness helpers in tests/lib.
svc_objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out %/main.c,$(wildcard services/$(word 1,$(subst _, ,$(patsubst test_%,%,$(notdir $(1)))))/*.c)))
$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $$(call svc_objs,$$*) $(TLIB_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka

$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

tests-bin: $(TESTS) $(BINS)

test: deps
	@$(MAKE) --no-print-directory tests-bin
	@BUILD=$(BUILD) tests/run.sh

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" tests-bin
	@BUILD=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 tests/run.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) tests/bench/run.sh

# Every daemon's start/stop under valgrind on a private local stack (slow; not in make test).
valgrind: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) tests/valgrind.sh

run: deps
	@$(MAKE) --no-print-directory all
	@deploy/local/run.sh start

stop:
	@deploy/local/run.sh stop

lint:
	cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,performance,portability \
	  --inline-suppr --suppress=missingIncludeSystem -Ilibcommon -Itests/lib -Iservices \
	  --include=tests/lib/lint_macros.h libcommon services tests
	clang-format --dry-run --Werror $(shell git ls-files '*.c' '*.h')

format:
	clang-format -i $(shell git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-*

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
