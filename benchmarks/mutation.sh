#!/usr/bin/env bash
# The mutation check of the test suite (docs/testing.md): mutmut 3 mutates the modules listed in
# pyproject.toml's [tool.mutmut] only_mutate, runs the tests that cover each mutant (tests/core,
# tests/nn, tests/ops), and prints per-module counts and the surviving mutants.
# Not part of CI: about 10 minutes on 2 shared cores. Needs `pip install mutmut`.
#
#   benchmarks/mutation.sh                      # the whole configured set
#   benchmarks/mutation.sh "plugrad.ops.*"      # only mutants whose names match
#   mutmut show NAME                            # one survivor's diff
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
rm -rf mutants  # mutmut caches verdicts per mutant; start clean so new tests count
"$PYTHON" -m mutmut run --max-children "${MUTMUT_CHILDREN:-2}" "$@"
"$PYTHON" benchmarks/mutation_summary.py --survivors
