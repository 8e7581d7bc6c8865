/* bench_tok: throughput, latency, load time and worst-case timing of the C
 * encoder (src/tokenize), for bench/tokenizer/run.sh.
 *
 * Owns: the C side of the tokenizer benchmark. Reads the corpus written by
 * bench_npm.mjs (corpus.bin: u32 length + bytes per text), encodes it
 * repeatedly, and prints one JSON object on stdout.
 * Usage: bench_tok CORPUS DATA_DIR ENCODING REPEATS [noworst]
 */
#define _GNU_SOURCE
#include "tokenize/tokenize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * 4;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: bench_tok CORPUS DATA_DIR ENCODING REPEATS\n");
        return 2;
    }
    int rc = 1, reps = atoi(argv[4]);
    FILE *f = fopen(argv[1], "rb");
    if (!f)
        return 1;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *blob = malloc((size_t)sz);
    if (!blob || fread(blob, 1, (size_t)sz, f) != (size_t)sz)
        return 1;
    fclose(f);
    size_t ntext = 0, cap = 8192, bytes = 0;
    char **text = malloc(cap * sizeof *text);
    size_t *len = malloc(cap * sizeof *len);
    for (long p = 0; p + 4 <= sz && ntext < cap;) {
        uint32_t n;
        memcpy(&n, blob + p, 4);
        text[ntext] = blob + p + 4;
        len[ntext++] = n;
        bytes += n;
        p += 4 + (long)n;
    }

    cg_encoding enc = cg_encoding_from_name(argv[3]);
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/%s", argv[2], cg_tok_file_name(enc));
    long rss0 = rss_kb();
    double t0 = now();
    cg_tokenizer *t = cg_tok_load(enc, path, err, sizeof err);
    double load_s = now() - t0;
    long rss1 = rss_kb();
    if (!t) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    /* warm-up + token total */
    int64_t tokens = 0;
    for (size_t i = 0; i < ntext; i++)
        tokens += cg_tok_count(t, text[i], len[i], 0);
    double best = 1e9, sum = 0;
    cg_tok_ids ids = {0};
    for (int r = 0; r < reps; r++) {
        double a = now();
        for (size_t i = 0; i < ntext; i++) {
            ids.n = 0;
            if (cg_tok_encode(t, text[i], len[i], 0, SIZE_MAX / 8, &ids) != 0)
                goto done;
        }
        double d = now() - a;
        sum += d;
        if (d < best)
            best = d;
    }
    /* per-request latency: each text encoded alone, 3 passes, all samples */
    double *lat = malloc(ntext * 3 * sizeof *lat);
    size_t nl = 0;
    for (int r = 0; r < 3; r++) {
        for (size_t i = 0; i < ntext; i++) {
            double a = now();
            ids.n = 0;
            cg_tok_encode(t, text[i], len[i], 0, SIZE_MAX / 8, &ids);
            lat[nl++] = (now() - a) * 1e6;
        }
    }
    qsort(lat, nl, sizeof *lat, cmpd);
    /* worst case: one long piece of 'a' and of ' ' */
    printf("{\"encoder\":\"costgate-c\",\"encoding\":\"%s\",\"texts\":%zu,\"bytes\":%zu,"
           "\"tokens\":%lld,\"repeats\":%d,\"best_s\":%.6f,\"mean_s\":%.6f,"
           "\"mb_per_s_best\":%.2f,\"mb_per_s_mean\":%.2f,\"lat_us_p50\":%.2f,"
           "\"lat_us_p99\":%.2f,\"lat_us_max\":%.2f,\"load_ms\":%.1f,\"table_bytes\":%zu,"
           "\"rss_delta_kb\":%ld,\"worst\":[",
           argv[3], ntext, bytes, (long long)tokens, reps, best, sum / reps,
           (double)bytes / 1e6 / best, (double)bytes / 1e6 / (sum / reps), lat[nl / 2],
           lat[nl * 99 / 100], lat[nl - 1], load_s * 1e3, cg_tok_memory(t), rss1 - rss0);
    static const char CH[] = {'a', ' ', '!'};
    int first = 1;
    for (size_t c = 0; c < (argc > 5 ? 0 : sizeof CH); c++) {
        for (size_t n = 4096; n <= (1u << 20); n *= 4) {
            char *s = malloc(n);
            memset(s, CH[c], n);
            double a = now();
            int64_t k = cg_tok_count(t, s, n, 0);
            double d = now() - a;
            printf("%s{\"char\":\"%c\",\"bytes\":%zu,\"tokens\":%lld,\"ms\":%.3f}",
                   first ? "" : ",", CH[c], n, (long long)k, d * 1e3);
            first = 0;
            free(s);
        }
    }
    printf("]}\n");
    free(lat);
    rc = 0;
done:
    cg_tok_ids_free(&ids);
    cg_tok_free(t);
    free(text);
    free(len);
    free(blob);
    return rc;
}
