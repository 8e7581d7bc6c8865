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
    rps[key, $3] = $6; p50[key, $3] = $9; cpu[key, $3] = $12
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
}
