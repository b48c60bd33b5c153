# Sourced by the shell tests (tools/*/test.sh, tests/engines): counted checks and the report.
failures=0 passed=0
check() {  # check NAME EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then
    passed=$((passed + 1))
  else
    failures=$((failures + 1))
    printf 'FAILED %s\n  expected: %s\n  actual:   %s\n' "$1" "$2" "$3"
  fi
}
contains() {  # contains NAME NEEDLE HAYSTACK
  case "$3" in
    *"$2"*) passed=$((passed + 1)) ;;
    *)
      failures=$((failures + 1))
      printf 'FAILED %s\n  %s not in: %s\n' "$1" "$2" "$3"
      ;;
  esac
}
report() {  # report [NAME]: the counts, and the status
  echo "${1:+$1: }$passed passed, $failures failed"
  [ "$failures" = 0 ]
}
