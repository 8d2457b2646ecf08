#!/bin/bash
# usage: run.sh FILE PERL_EXPR LABEL  -- runs the httpapi tests against a mutated copy of FILE via -overlay
cd /work/main
f=$1; expr=$2; label=$3
out=httpapi/.mut/mutant_$(basename $f).txt
perl -0pe "$expr" "$f" > "$out"
if cmp -s "$f" "$out"; then echo "[$label] NO MATCH"; exit 1; fi
printf '{"Replace":{"%s":"%s"}}' "/work/main/$f" "/work/main/$out" > httpapi/.mut/overlay.json
res=$(go test -count=1 $GOTESTFLAGS -overlay httpapi/.mut/overlay.json ./httpapi/ 2>&1)
if echo "$res" | grep -q '^ok'; then echo "[$label] SURVIVED (tests passed)"; else
  fails=$(echo "$res" | grep -E -- '--- FAIL' | sed 's/ (.*//; s/.*--- FAIL: //' | tr '\n' ' ')
  [ -z "$fails" ] && fails=$(echo "$res" | tail -3 | tr '\n' ' ')
  echo "[$label] KILLED by: $fails"; fi
