# bench/paired.awk: the verdict statistics of a bench run, from its
# per-slice file (bench/out/results-<date>.slices.tsv, written by run.sh).
#   awk -F'\t' -f bench/paired.awk bench/out/results-<date>.slices.tsv
#
# Paths of one cell run in rounds (every path one slice per round, the order
# rotating), so outside load mostly hits the paths of a round alike. For a
# path A against a reference B the ratio of round k is
# rps(A, k) / rps(B, k); the estimate is the geometric mean of those ratios
# and its 95% confidence interval is exp(mean +- t * sd / sqrt(n)) of their
# logarithms (Student t, n - 1 degrees of freedom). The same for server CPU
# per request (utime + stime ticks of the server process / requests).
#
# A difference is called measurable when the interval excludes 1. The
# tiering cell's A/A control (costgate-twin against costgate: the same
# binary and config) shows how far two identical gateways land apart in the
# same run, i.e. the noise the other intervals are judged against.
#
# Columns of the input: mode conns path slice requests duration_us p50_us
# p99_us errors server_ticks mock_ticks ledger_rows ledger_ok
function tq(df) { # two-sided 95% Student t quantile
    if (df < 1) return 0
    if (df <= 30) return T[df]
    return 1.96
}
function interval(a, b, what,    k, n, s, ss, m, sd, h, x) {
    n = 0; s = 0; ss = 0
    for (k = 1; k <= R[cell]; k++) {
        if (!((cell, a, k) in rps) || !((cell, b, k) in rps)) continue
        if (what == "rps") {
            if (rps[cell, b, k] <= 0 || rps[cell, a, k] <= 0) continue
            x = log(rps[cell, a, k] / rps[cell, b, k])
        } else {
            if (cpu[cell, b, k] <= 0 || cpu[cell, a, k] <= 0) continue
            x = log(cpu[cell, a, k] / cpu[cell, b, k])
        }
        n++; s += x; ss += x * x
    }
    if (n < 2) return ""
    m = s / n
    sd = sqrt((ss - n * m * m) / (n - 1) > 0 ? (ss - n * m * m) / (n - 1) : 0)
    h = tq(n - 1) * sd / sqrt(n)
    LO = exp(m - h); HI = exp(m + h); N = n
    return sprintf("%.3f (95%% CI %.3f..%.3f)", exp(m), LO, HI)
}
function verdict(lo, hi) {
    if (hi < 1) return "lower, measurably"
    if (lo > 1) return "higher, measurably"
    return "no measurable difference"
}
function pair(a, b, label,    t, c) {
    if (!((cell, a) in seen) || !((cell, b) in seen)) return
    t = interval(a, b, "rps")
    if (t == "") return
    tlo = LO; thi = HI; n = N
    c = interval(a, b, "cpu")
    split(cell, kk, SUBSEP)
    printf "- %s, %s conn, %s / %s (%s; %d rounds): throughput %s: %s; server CPU per request %s\n",
        kk[1], kk[2], a, b, label, n, t, verdict(tlo, thi), c
}
BEGIN {
    split("12.706 4.303 3.182 2.776 2.571 2.447 2.365 2.306 2.262 2.228 2.201 2.179 2.160 2.145 " \
          "2.131 2.120 2.110 2.101 2.093 2.086 2.080 2.074 2.069 2.064 2.060 2.056 2.052 2.048 " \
          "2.045 2.042", T, " ")
}
NR == 1 { next }
{
    c = $1 SUBSEP $2
    if (!(c in R)) order[++m] = c
    if ($4 > R[c]) R[c] = $4
    seen[c, $3] = 1
    rps[c, $3, $4] = $6 > 0 ? $5 / ($6 / 1e6) : 0
    cpu[c, $3, $4] = $5 > 0 ? $10 / $5 : 0
}
END {
    print "Paired per-round ratios (bench/paired.awk; geometric mean and 95% CI over the rounds):"
    print ""
    for (i = 1; i <= m; i++) {
        cell = order[i]
        pair("costgate", "nginx", "gateway vs nginx")
        pair("costgate-hit", "nginx", "cache hits vs nginx's proxy; bar >= 1.5")
        pair("costgate-miss", "costgate", "stored misses vs the plain proxy")
        pair("costgate-miss", "costgate-nostore", "stored misses vs cache bypass, same process")
        pair("costgate-nostore", "costgate", "cache bypass vs the plain proxy")
        pair("costgate-tier", "costgate", "tiering vs its plain twin")
        pair("costgate-twin", "costgate", "A/A control: two plain twins")
        pair("costgate-tier", "costgate-twin", "tiering vs the second plain twin")
    }
}
