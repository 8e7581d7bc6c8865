# bench/table.awk: renders a bench/out/results-*.tsv (written by run.sh) as
# the markdown table and ratio lines of RESULTS.md.
#   awk -F'\t' -f bench/table.awk bench/out/results-<date>.tsv
# Columns: mode conns path requests duration_us rps rps_min rps_max p50_us
# p99_us errors server_cpu_us_per_req mock_cpu_us_per_req ledger_rows
# ledger_ok ledger_check
BEGIN {
    print "| mode | conns | path | req/s (slice min..max) | p50 µs | p99 µs | added p50 µs | added p99 µs | server CPU µs/req | mock CPU µs/req | errors | ledger check |"
    print "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
}
NR == 1 { next }
{
    key = $1 SUBSEP $2
    if ($3 == "direct") { d50[key] = $9; d99[key] = $10 }
    a50 = ($3 == "direct") ? "-" : sprintf("%+d", $9 - d50[key])
    a99 = ($3 == "direct") ? "-" : sprintf("%+d", $10 - d99[key])
    led = ($16 == "-") ? "-" : sprintf("%s: %d done, %d ok rows, %d rows", $16, $4, $15, $14)
    printf "| %s | %s | %s | %s (%s..%s) | %s | %s | %s | %s | %s | %s | %s | %s |\n",
        $1, $2, $3, $6, $7, $8, $9, $10, a50, a99, $12, $13, $11, led
    rps[key, $3] = $6; p50[key, $3] = $9; cpu[key, $3] = $12; mcpu[key, $3] = $13
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
}
END {
    print ""
    print "Ratios (costgate = workers 1; added p50 = path p50 - direct p50):"
    print ""
    for (i = 1; i <= n; i++) {
        k = order[i]; split(k, kk, SUBSEP)
        if (!((k, "nginx") in rps) || !((k, "costgate") in rps)) continue
        an = p50[k, "nginx"] - p50[k, "direct"]; ac = p50[k, "costgate"] - p50[k, "direct"]
        printf "- %s, %s conn: throughput costgate/nginx = %.2f; added p50 costgate %+d µs vs nginx %+d µs (x%s); server CPU/req costgate/nginx = %.1f\n",
            kk[1], kk[2], rps[k, "costgate"] / rps[k, "nginx"], ac, an,
            (an > 0 ? sprintf("%.1f", ac / an) : "n/a"),
            (cpu[k, "nginx"] > 0 ? cpu[k, "costgate"] / cpu[k, "nginx"] : 0)
    }
    # the exact cache's cells (bench/run.sh BENCH_CACHE_MODES)
    for (i = 1; i <= n; i++) {
        k = order[i]; split(k, kk, SUBSEP)
        if ((k, "costgate-hit") in rps && (k, "nginx") in rps)
            printf "- %s, %s conn: cache hits: throughput costgate-hit/nginx = %.2f (bar: >= 1.5), costgate-hit/costgate (plain proxy) = %.2f; server CPU/req costgate-hit %.1f µs, nginx %.1f µs (+ mock %.1f µs), costgate %.1f µs\n",
                kk[1], kk[2], rps[k, "costgate-hit"] / rps[k, "nginx"],
                rps[k, "costgate-hit"] / rps[k, "costgate"], cpu[k, "costgate-hit"], cpu[k, "nginx"],
                mcpu[k, "nginx"], cpu[k, "costgate"]
        if ((k, "costgate-miss") in rps && (k, "costgate") in rps)
            printf "- %s, %s conn: cache misses: throughput costgate-miss/costgate = %.2f (every request stored), costgate-nostore/costgate = %.2f; server CPU/req costgate %.1f µs, costgate-miss %.1f µs (%+.1f%%), costgate-nostore %.1f µs (%+.1f%%)\n",
                kk[1], kk[2], rps[k, "costgate-miss"] / rps[k, "costgate"],
                ((k, "costgate-nostore") in rps ? rps[k, "costgate-nostore"] / rps[k, "costgate"] : 0),
                cpu[k, "costgate"], cpu[k, "costgate-miss"],
                100 * (cpu[k, "costgate-miss"] / cpu[k, "costgate"] - 1),
                cpu[k, "costgate-nostore"],
                ((k, "costgate-nostore") in rps ? 100 * (cpu[k, "costgate-nostore"] / cpu[k, "costgate"] - 1) : 0)
    }
}
