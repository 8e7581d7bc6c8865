/* cli: `costgate embed`: sentence embeddings from the command line.
 *
 * Owns: the command's options, input reading (capped) and line splitting,
 * the output formats (JSON arrays, raw float32, token ids), the STS-B
 * evaluation (CSV parsing and Spearman correlation) and the timing mode the
 * benchmark uses. The embedding itself is embed.h.
 */
#include "embed/cli.h"

#include "core/buf.h"
#include "embed/embed.h"

#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_INPUT_BYTES (256u << 20)
#define DEFAULT_MODEL "var/models/use-lite.bin"

static const char USAGE[] =
    "usage: costgate embed [options] [FILE]\n"
    "\n"
    "Embeds each line of FILE (stdin when FILE is absent or '-') with the built-in\n"
    "sentence encoder (Universal Sentence Encoder lite, 512-d, unit length) and\n"
    "prints one JSON array per line. A trailing CR is dropped from each line.\n"
    "\n"
    "  -m, --model PATH     model file (default var/models/use-lite.bin, looked up in the\n"
    "                       current directory, then $CG_SOURCE_DIR, then above the binary)\n"
    "  -f, --format FMT     json (default) or bin: 512 little-endian float32 per line\n"
    "  -t, --tokens         print the SentencePiece ids the model sees (JSON array per line)\n"
    "      --b64-lines      each input line is base64 of the text (any bytes)\n"
    "      --stsb CSV       STS-B file (sentence1,sentence2,score; no header): print the\n"
    "                       Spearman correlation of cosine similarity with the scores\n"
    "      --bench          embed every line, print throughput and latency as JSON\n"
    "      --repeat N       with --bench: passes over the input (default 1)\n"
    "      --isa NAME       kernels: auto (default), generic, avx2, avx512, amx\n"
    "      --fp32           keep the weights in float32 (default: bfloat16 with the AMX\n"
    "                       kernels, half floats with AVX2/AVX-512; see docs/embed.md)\n"
    "  -h, --help           this help\n"
    "\n"
    "Text is read as UTF-8 (invalid bytes as U+FFFD); at most 128 tokens are used.\n"
    "Create the model file with scripts/setup.sh (node scripts/convert_use.mjs).\n";

enum { OPT_B64 = 256, OPT_STSB, OPT_BENCH, OPT_REPEAT, OPT_ISA, OPT_FP32 };

typedef struct {
    const char *model, *file, *stsb;
    int bin, tokens, b64, bench, repeat;
    cg_embed_opts eo;
} opts;

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The default model path: cwd, $CG_SOURCE_DIR, then up to 4 directories
 * above the binary (a build directory inside the source tree). */
static void find_model(char *out, size_t cap) {
    const char *env;
    snprintf(out, cap, "%s", DEFAULT_MODEL);
    if (exists(out))
        return;
    if ((env = getenv("CG_SOURCE_DIR")) && *env) {
        snprintf(out, cap, "%s/%s", env, DEFAULT_MODEL);
        if (exists(out))
            return;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        for (int up = 0; up < 4; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash)
                break;
            *slash = '\0';
            snprintf(out, cap, "%s/%s", exe, DEFAULT_MODEL);
            if (exists(out))
                return;
        }
    }
    snprintf(out, cap, "%s", DEFAULT_MODEL); /* the error names the usual path */
}

static int read_all(const char *path, cg_buf *b) {
    FILE *f = (!path || strcmp(path, "-") == 0) ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "embed: %s: cannot open\n", path);
        return -1;
    }
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (cg_buf_append(b, chunk, n) != 0) {
            fprintf(stderr, "embed: input larger than %u MiB\n", MAX_INPUT_BYTES >> 20);
            rc = -1;
            break;
        }
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "embed: read error\n");
        rc = -1;
    }
    if (f != stdin)
        fclose(f);
    return rc;
}

static int b64_val(unsigned char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes n base64 characters (padding optional) into out (>= 3n/4 + 3
 * bytes). Returns the byte count or -1. */
static long b64_decode(const char *s, size_t n, char *out) {
    while (n > 0 && s[n - 1] == '=')
        n--;
    long o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    return o;
}

typedef struct {
    const cg_embedder *e;
    const opts *o;
    char *scratch; /* b64 decoding */
    double *lat;   /* --bench: per-call seconds */
    size_t n_lat, cap_lat;
    long tokens_total;
    double cpu_total; /* --bench: thread CPU seconds inside cg_embed */
} run_ctx;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of this thread: unlike wall time, not inflated by other
 * processes taking the core (the machine is shared). */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void print_vec(const float *v) {
    char line[CG_EMBED_DIM * 18 + 4];
    size_t o = 0;
    line[o++] = '[';
    for (int i = 0; i < CG_EMBED_DIM; i++)
        o += (size_t)snprintf(line + o, sizeof line - o, i ? ",%.9g" : "%.9g", (double)v[i]);
    line[o++] = ']';
    line[o++] = '\n';
    fwrite(line, 1, o, stdout);
}

/* One input line (already decoded). */
static int do_line(run_ctx *c, const char *text, size_t len) {
    if (c->o->tokens) {
        int32_t ids[CG_EMBED_MAX_TOKENS];
        int n = cg_embed_tokenize(c->e, text, len, ids, CG_EMBED_MAX_TOKENS);
        if (n < 0)
            return -1;
        putchar('[');
        for (int i = 0; i < n; i++)
            printf(i ? ",%d" : "%d", (int)ids[i]);
        fputs("]\n", stdout);
        return 0;
    }
    float v[CG_EMBED_DIM];
    if (c->o->bench) {
        double c0 = cpu_s(), t0 = now_s();
        if (cg_embed(c->e, text, len, v) != 0)
            return -1;
        double dt = now_s() - t0;
        c->cpu_total += cpu_s() - c0;
        if (c->n_lat == c->cap_lat) {
            size_t nc = c->cap_lat ? c->cap_lat * 2 : 1024;
            double *nl = realloc(c->lat, nc * sizeof *nl);
            if (!nl)
                return -1;
            c->lat = nl;
            c->cap_lat = nc;
        }
        c->lat[c->n_lat++] = dt;
        int32_t ids[CG_EMBED_MAX_TOKENS];
        c->tokens_total += cg_embed_tokenize(c->e, text, len, ids, CG_EMBED_MAX_TOKENS);
        return 0;
    }
    if (cg_embed(c->e, text, len, v) != 0)
        return -1;
    if (c->o->bin)
        fwrite(v, sizeof(float), CG_EMBED_DIM, stdout);
    else
        print_vec(v);
    return 0;
}

/* Calls do_line for each line of in; a last line without '\n' counts. */
static int for_lines(run_ctx *c, const cg_buf *in) {
    size_t i = 0;
    while (i < in->len) {
        const char *s = in->data + i, *nl = memchr(s, '\n', in->len - i);
        size_t n = nl ? (size_t)(nl - s) : in->len - i;
        i += n + (nl ? 1 : 0);
        if (n > 0 && s[n - 1] == '\r')
            n--;
        if (c->o->b64) {
            long m = b64_decode(s, n, c->scratch);
            if (m < 0) {
                fprintf(stderr, "embed: line at byte %zu: bad base64\n", (size_t)(s - in->data));
                return -1;
            }
            s = c->scratch;
            n = (size_t)m;
        }
        if (do_line(c, s, n) != 0) {
            fprintf(stderr, "embed: out of memory\n");
            return -1;
        }
    }
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, size_t n, double q) {
    size_t k = (size_t)ceil(q * (double)n);
    return sorted[k > 0 ? k - 1 : 0];
}

static void print_bench(const run_ctx *c) {
    double total = 0.0;
    for (size_t i = 0; i < c->n_lat; i++)
        total += c->lat[i];
    qsort(c->lat, c->n_lat, sizeof *c->lat, cmp_double);
    printf("{\"sentences\":%zu,\"seconds\":%.6f,\"cpu_seconds\":%.6f,\"sentences_per_s\":%.2f,"
           "\"sentences_per_cpu_s\":%.2f,\"mean_ms\":%.4f,\"p50_ms\":%.4f,\"p99_ms\":%.4f,"
           "\"mean_tokens\":%.2f,\"isa\":\"%s\",\"weights\":\"%s\"}\n",
           c->n_lat, total, c->cpu_total, total > 0 ? (double)c->n_lat / total : 0.0,
           c->cpu_total > 0 ? (double)c->n_lat / c->cpu_total : 0.0,
           c->n_lat ? 1e3 * total / (double)c->n_lat : 0.0,
           c->n_lat ? 1e3 * percentile(c->lat, c->n_lat, 0.50) : 0.0,
           c->n_lat ? 1e3 * percentile(c->lat, c->n_lat, 0.99) : 0.0,
           c->n_lat ? (double)c->tokens_total / (double)c->n_lat : 0.0, cg_embed_isa_name(c->e),
           cg_embed_weights_name(c->e));
}

/* ---- STS-B ---- */

typedef struct {
    char *f[3];
    size_t n[3];
    int nf;
} csv_rec;

/* Parses one RFC 4180 record from p[0..end) (quoted fields, "" escapes,
 * LF or CRLF). Unquoted fields point into the input; quoted ones are
 * unescaped in place. Returns the position after the record. */
static size_t csv_next(char *p, size_t i, size_t end, csv_rec *r) {
    r->nf = 0;
    for (;;) {
        char *start;
        size_t len = 0;
        if (i < end && p[i] == '"') {
            i++;
            start = p + i;
            while (i < end) {
                if (p[i] == '"') {
                    if (i + 1 < end && p[i + 1] == '"') {
                        start[len++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                start[len++] = p[i++];
            }
            while (i < end && p[i] != ',' && p[i] != '\n') /* junk after a quote */
                i++;
        } else {
            start = p + i;
            while (i < end && p[i] != ',' && p[i] != '\n')
                i++;
            len = (size_t)(p + i - start);
        }
        if (len > 0 && start[len - 1] == '\r' && (i >= end || p[i] == '\n'))
            len--;
        if (r->nf < 3) {
            r->f[r->nf] = start;
            r->n[r->nf] = len;
        }
        r->nf++;
        if (i < end && p[i] == ',') {
            i++;
            continue;
        }
        return i < end ? i + 1 : i;
    }
}

/* Average ranks (ties share their mean rank), 1-based. */
static int ranks(const double *x, size_t n, double *rk) {
    size_t *idx = malloc(n * sizeof *idx);
    if (!idx)
        return -1;
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    /* insertion-free: sort indices by value */
    for (size_t gap = n / 2; gap > 0; gap /= 2)
        for (size_t i = gap; i < n; i++)
            for (size_t j = i; j >= gap && x[idx[j - gap]] > x[idx[j]]; j -= gap) {
                size_t t = idx[j];
                idx[j] = idx[j - gap];
                idx[j - gap] = t;
            }
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && x[idx[j + 1]] == x[idx[i]])
            j++;
        double r = (double)(i + j) / 2.0 + 1.0;
        for (size_t k = i; k <= j; k++)
            rk[idx[k]] = r;
        i = j + 1;
    }
    free(idx);
    return 0;
}

static double pearson(const double *a, const double *b, size_t n) {
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < n; i++) {
        ma += a[i];
        mb += b[i];
    }
    ma /= (double)n;
    mb /= (double)n;
    for (size_t i = 0; i < n; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : 0.0;
}

static int run_stsb(const cg_embedder *e, const char *path) {
    cg_buf in;
    cg_buf_init(&in, MAX_INPUT_BYTES);
    double *gold = NULL, *cosv = NULL, *r1 = NULL, *r2 = NULL;
    size_t n = 0, cap = 0;
    int rc = 1;
    if (read_all(path, &in) != 0)
        goto out;
    for (size_t i = 0, line = 1; i < in.len; line++) {
        csv_rec r;
        i = csv_next(in.data, i, in.len, &r);
        if (r.nf == 1 && r.n[0] == 0)
            continue; /* blank line */
        if (r.nf != 3) {
            fprintf(stderr, "embed: %s: record %zu has %d fields, expected 3\n", path, line, r.nf);
            goto out;
        }
        char num[64], *endp;
        snprintf(num, sizeof num, "%.*s", (int)(r.n[2] < 63 ? r.n[2] : 63), r.f[2]);
        double score = strtod(num, &endp);
        if (endp == num || *endp != '\0' || !isfinite(score)) {
            fprintf(stderr, "embed: %s: record %zu: bad score '%s'\n", path, line, num);
            goto out;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            double *g = realloc(gold, cap * sizeof *g), *c;
            if (g)
                gold = g;
            c = g ? realloc(cosv, cap * sizeof *c) : NULL;
            if (!g || !c) {
                fprintf(stderr, "embed: out of memory\n");
                goto out;
            }
            cosv = c;
        }
        float a[CG_EMBED_DIM], b[CG_EMBED_DIM];
        if (cg_embed(e, r.f[0], r.n[0], a) != 0 || cg_embed(e, r.f[1], r.n[1], b) != 0) {
            fprintf(stderr, "embed: out of memory\n");
            goto out;
        }
        double dot = 0, na = 0, nb = 0;
        for (int k = 0; k < CG_EMBED_DIM; k++) {
            dot += (double)a[k] * b[k];
            na += (double)a[k] * a[k];
            nb += (double)b[k] * b[k];
        }
        gold[n] = score;
        cosv[n] = dot / sqrt(na * nb);
        n++;
    }
    if (n < 2) {
        fprintf(stderr, "embed: %s: fewer than 2 pairs\n", path);
        goto out;
    }
    r1 = malloc(n * sizeof *r1);
    r2 = malloc(n * sizeof *r2);
    if (!r1 || !r2 || ranks(gold, n, r1) != 0 || ranks(cosv, n, r2) != 0) {
        fprintf(stderr, "embed: out of memory\n");
        goto out;
    }
    printf("{\"pairs\":%zu,\"spearman\":%.6f,\"pearson\":%.6f}\n", n, pearson(r1, r2, n),
           pearson(gold, cosv, n));
    rc = 0;
out:
    cg_buf_free(&in);
    free(gold);
    free(cosv);
    free(r1);
    free(r2);
    return rc;
}

static int parse(int argc, char **argv, opts *o) {
    static const struct option lo[] = {{"model", required_argument, NULL, 'm'},
                                       {"format", required_argument, NULL, 'f'},
                                       {"tokens", no_argument, NULL, 't'},
                                       {"b64-lines", no_argument, NULL, OPT_B64},
                                       {"stsb", required_argument, NULL, OPT_STSB},
                                       {"bench", no_argument, NULL, OPT_BENCH},
                                       {"repeat", required_argument, NULL, OPT_REPEAT},
                                       {"isa", required_argument, NULL, OPT_ISA},
                                       {"fp32", no_argument, NULL, OPT_FP32},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    opterr = 1;
    o->repeat = 1;
    while ((c = getopt_long(argc, argv, "m:f:th", lo, NULL)) != -1) {
        switch (c) {
        case 'm':
            o->model = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "bin") == 0)
                o->bin = 1;
            else if (strcmp(optarg, "json") != 0) {
                fprintf(stderr, "embed: --format is json or bin\n");
                return 2;
            }
            break;
        case 't':
            o->tokens = 1;
            break;
        case OPT_B64:
            o->b64 = 1;
            break;
        case OPT_STSB:
            o->stsb = optarg;
            break;
        case OPT_BENCH:
            o->bench = 1;
            break;
        case OPT_REPEAT:
            o->repeat = atoi(optarg);
            if (o->repeat < 1 || o->repeat > 1000) {
                fprintf(stderr, "embed: --repeat is 1..1000\n");
                return 2;
            }
            break;
        case OPT_ISA:
            if (strcmp(optarg, "auto") == 0)
                o->eo.isa = CG_EMBED_ISA_AUTO;
            else if (strcmp(optarg, "generic") == 0)
                o->eo.isa = CG_EMBED_ISA_GENERIC;
            else if (strcmp(optarg, "avx2") == 0)
                o->eo.isa = CG_EMBED_ISA_AVX2;
            else if (strcmp(optarg, "avx512") == 0)
                o->eo.isa = CG_EMBED_ISA_AVX512;
            else if (strcmp(optarg, "amx") == 0)
                o->eo.isa = CG_EMBED_ISA_AMX;
            else {
                fprintf(stderr, "embed: --isa is auto, generic, avx2, avx512 or amx\n");
                return 2;
            }
            break;
        case OPT_FP32:
            o->eo.fp32_weights = 1;
            break;
        case 'h':
            fputs(USAGE, stdout);
            return 0;
        default:
            fputs(USAGE, stderr);
            return 2;
        }
    }
    if (optind < argc)
        o->file = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "embed: one input file at most\n");
        return 2;
    }
    return -1;
}

int cg_embed_main(int argc, char **argv) {
    opts o = {0};
    int rc = parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    char path[PATH_MAX + 64], err[512];
    if (o.model)
        snprintf(path, sizeof path, "%s", o.model);
    else
        find_model(path, sizeof path);
    cg_embedder *e = cg_embed_open_opts(path, &o.eo, err, sizeof err);
    if (!e) {
        fprintf(stderr, "embed: %s\n", err);
        return 1;
    }
    if (o.stsb) {
        rc = run_stsb(e, o.stsb);
        cg_embed_close(e);
        return rc;
    }
    cg_buf in;
    cg_buf_init(&in, MAX_INPUT_BYTES);
    run_ctx c = {.e = e, .o = &o};
    rc = 1;
    if (read_all(o.file, &in) != 0)
        goto out;
    if (o.b64 && !(c.scratch = malloc(in.len / 4 * 3 + 4))) {
        fprintf(stderr, "embed: out of memory\n");
        goto out;
    }
    if (o.bench) { /* warm caches and page in the weights first */
        size_t warm = in.len < 4096 ? in.len : 4096;
        cg_buf head = {.data = in.data, .len = warm, .cap = warm, .max = warm};
        run_ctx w = c;
        if (for_lines(&w, &head) != 0)
            goto out;
        free(w.lat);
    }
    for (int pass = 0; pass < (o.bench ? o.repeat : 1); pass++)
        if (for_lines(&c, &in) != 0)
            goto out;
    if (o.bench)
        print_bench(&c);
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    free(c.scratch);
    free(c.lat);
    cg_buf_free(&in);
    cg_embed_close(e);
    return rc;
}
