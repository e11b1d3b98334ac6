/*
 * check.h: relay64 -C, what each listener can bind and reach, in words.
 */
#ifndef RELAY64_CHECK_H
#define RELAY64_CHECK_H

#include <stdio.h>

struct conf;

int	check_run(const struct conf *, FILE *);

#endif
