#!/bin/sh
# The fuzzing harnesses of tests/fuzz/, built with this build's compiler
# and sanitizers and a plain main() (tests/fuzz/replay.c), replay their
# seed corpora and every regression case: what a fuzzer once found stays
# fixed in every build.  tests/fuzz/run does the fuzzing itself.
set -u
srcdir=${srcdir:-.}
status=0
for h in conf addr proxyhdr; do
	set -- "$srcdir/tests/fuzz/corpus/$h"
	if [ -d "$srcdir/tests/fuzz/regress/$h" ]; then
		set -- "$@" "$srcdir/tests/fuzz/regress/$h"
	fi
	echo "== $h"
	"./tests/fuzz/replay_$h" "$@"
	st=$?
	if [ $st -ne 0 ]; then
		echo "FAIL: $h (status $st)"
		[ $status -eq 99 ] || status=$st
	fi
done
exit $status
