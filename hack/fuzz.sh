#!/usr/bin/env bash
# Runs every fuzz target of the project for FUZZTIME each (default 10s).
# `make test` runs it with a short time, so that every parser we own meets
# fresh hostile input on every CI run; the corpus that earlier runs found is
# kept in each package's testdata/fuzz/ and replayed by `go test` always.
#
#   hack/fuzz.sh            fuzz every target
#   hack/fuzz.sh --save N   also copy up to N new inputs per target from Go's
#                           fuzz cache into testdata/fuzz (to commit)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
time=${FUZZTIME:-10s}
save=0
if [ "${1:-}" = --save ]; then save=${2:?--save N}; fi
module=$(go list -m)
cache=$(go env GOCACHE)/fuzz
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r f; do
	pkg=./$(dirname "${f#./}")
	for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f"); do
		echo "fuzz: $pkg $target ($time)"
		# Only the verdict when it passes; the whole story when it fails (a
		# crasher is also written under testdata/fuzz, a hung or dead worker
		# only says so here).
		out=$(mktemp)
		ok=0
		for try in 1 2; do
			if go test -run '^$' -fuzz "^$target\$" -fuzztime "$time" "$pkg" >"$out" 2>&1; then
				ok=1
				break
			fi
			# Go's fuzzing engine sometimes ends a run with "context
			# deadline exceeded" and no failing input when the machine is
			# busy (its workers miss the end of -fuzztime): that is no
			# finding, so it gets one more run. A real finding writes its
			# input under testdata/fuzz and fails at once.
			if [ "$try" = 1 ] && grep -q 'context deadline exceeded' "$out" && ! grep -q 'Failing input written to' "$out"; then
				echo "fuzz: $target: the fuzzing engine timed out without a finding (a busy machine); running it again"
				continue
			fi
			break
		done
		if [ "$ok" = 0 ]; then
			tail -n 60 "$out"
			rm -f "$out"
			exit 1
		fi
		tail -n 1 "$out"
		rm -f "$out"
		if [ "$save" -gt 0 ]; then
			src=$cache/$module/${pkg#./}/$target
			dst=${pkg#./}/testdata/fuzz/$target
			[ -d "$src" ] || continue
			mkdir -p "$dst"
			# the smallest inputs first: they are the clearest regressions to replay
			ls -S -r "$src" | head -n "$save" | while read -r in; do cp "$src/$in" "$dst/$in"; done
			echo "fuzz: kept $(ls "$dst" | wc -l) inputs in $dst"
		fi
	done
done
