/*
 * fuzz.h: what the fuzzing harnesses share.
 *
 * Each harness is one LLVMFuzzerTestOneInput().  tests/fuzz/run links it
 * with libFuzzer (clang, -fsanitize=fuzzer,address,undefined); make check
 * links it with replay.c, a main() that feeds it the files of the seed
 * corpora and the regression cases, with the build's own compiler and
 * sanitizers.  A broken property aborts, as a sanitizer report does.
 */
#ifndef RELAY64_FUZZ_H
#define RELAY64_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FUZZ_CHECK(cond, ...) do {					\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__,	\
		    __LINE__, #cond);					\
		fprintf(stderr, __VA_ARGS__);				\
		fprintf(stderr, "\n");					\
		abort();						\
	}								\
} while (0)

#endif
