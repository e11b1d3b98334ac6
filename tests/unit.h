/*
 * unit.h: a tiny harness for the C unit tests.  Each CHECK prints what it
 * tested; main() returns unit_result(): 0 when all passed, 1 otherwise.
 */
#ifndef RELAY64_UNIT_H
#define RELAY64_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_failed, unit_run;

#define CHECK(cond, ...) do {						\
	unit_run++;							\
	if (!(cond)) {							\
		unit_failed++;						\
		printf("FAIL %s:%d: ", __FILE__, __LINE__);		\
		printf(__VA_ARGS__);					\
		printf("\n");						\
	}								\
} while (0)

#define CHECK_STR(got, want, ...) do {					\
	const char *g_ = (got), *w_ = (want);				\
	unit_run++;							\
	if ((g_ == NULL) != (w_ == NULL) ||				\
	    (g_ != NULL && strcmp(g_, w_) != 0)) {			\
		unit_failed++;						\
		printf("FAIL %s:%d: got \"%s\", want \"%s\": ",		\
		    __FILE__, __LINE__, g_ ? g_ : "(null)",		\
		    w_ ? w_ : "(null)");				\
		printf(__VA_ARGS__);					\
		printf("\n");						\
	}								\
} while (0)

static inline int
unit_result(void)
{
	printf("%d checks, %d failed\n", unit_run, unit_failed);
	return unit_failed ? 1 : 0;
}

#endif
