# shellcheck shell=bash
# Sourced by scripts/test (not run): the closing summary of a test run.
#
#   test_summary OUTPUT SKIPLOG
#       OUTPUT is what `cargo test` printed; SKIPLOG the file that
#       testkit::skip appended `TEST<TAB>reason` lines to (the test run's
#       TESTKIT_SKIP_LOG). Prints the skipped tests with their reasons, then
#       "N passed, N failed, N skipped" (cargo counts a skipped test as
#       passed; here it is counted once, as skipped). Sets SUMMARY_SKIPPED
#       and SUMMARY_FAILED.

test_summary() {
    local output=$1 skiplog=$2 passed failed ignored
    read -r passed failed ignored < <(
        sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored;.*/\1 \2 \3/p' "$output" |
            awk '{p += $1; f += $2; i += $3} END {print p + 0, f + 0, i + 0}'
    )
    SUMMARY_SKIPPED=0
    [ -s "$skiplog" ] && SUMMARY_SKIPPED=$(wc -l <"$skiplog")
    SUMMARY_FAILED=$failed
    if [ "$SUMMARY_SKIPPED" -gt 0 ]; then
        echo
        echo "$SUMMARY_SKIPPED skipped (they cannot run here; cargo counted them as passed):"
        sort "$skiplog" | awk -F '\t' '{print "  " $1 ": " $2}'
    fi
    echo
    echo "$((passed - SUMMARY_SKIPPED)) passed, $failed failed, $SUMMARY_SKIPPED skipped ($ignored ignored: benchmarks and child-process helpers)"
}
