/* vbench: benchmark of the vector index (src/vector) on a vectors file.
 *
 * Owns: the synthetic data generator and the measurements reported in
 * bench/RESULTS.md (vector-bench section): build time, single-thread k=1
 * lookup latency p50/p99, recall@1 against exact search on held-out
 * queries, index memory, save/load time, and the brute-force crossover.
 *
 *   vbench gen OUT --n N [--dim 512] [--centres 4096] [--spread 0.75]
 *                      [--intrinsic 0] [--seed 1]
 *   vbench run FILE --dim D --queries Q [--n N] [--M 16] [--efc 200]
 *                   [--ef 16,32,64,128] [--gt GTFILE] [--save PATH [--keep 1]]
 *                   [--tsv OUT] [--label NAME] [--brute N]
 *   vbench crossover [--dim 512] [--seed 1]
 *   vbench gt FILE --dim D --queries Q [--n N] --gt GTFILE
 *   vbench query INDEX FILE --dim D --queries Q --gt GTFILE [--ef ...]
 *
 * A vectors file is raw float32, row-major, n x dim, no header (so real
 * embeddings can be dropped in). `run` inserts the first N rows and queries
 * with the last Q rows, which are never inserted. Ground truth (exact top-1
 * id and similarity per query) is computed by brute force and cached in
 * GTFILE so the hnswlib comparison (hnswlib_cmp.cpp) scores the same way.
 *
 * Generator ("gen"): C centres drawn uniformly on the unit sphere; each
 * vector picks a centre j uniformly and is normalise(c_j + spread * u),
 * where u is a Gaussian noise vector of expected norm 1: isotropic in all
 * dim coordinates when --intrinsic 0, else confined to one fixed random
 * subspace of that dimension (low intrinsic dimension, like real sentence
 * embeddings). With spread 0.75 a vector's cosine to its centre is ~0.8
 * and two vectors of one cluster are at ~0.64.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vector/vector.h"
#include "vector/vector_internal.h" /* cg_v_dot for the exact ground truth */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_state;
static uint64_t rnd64(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double unif(void) {
    return ((double)(rnd64() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
static double gauss(void) {
    return sqrt(-2.0 * log(unif())) * cos(6.283185307179586 * unif());
}

static void normalise(float *v, int d) {
    double s = 0;
    for (int i = 0; i < d; i++)
        s += (double)v[i] * v[i];
    s = 1.0 / sqrt(s);
    for (int i = 0; i < d; i++)
        v[i] = (float)(v[i] * s);
}

static long rss_anon_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "RssAnon: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static const char *arg(int argc, char **argv, const char *name, const char *def) {
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return def;
}

static int cmd_gen(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: vbench gen OUT --n N [...]\n");
        return 2;
    }
    const char *out = argv[2];
    long n = atol(arg(argc, argv, "--n", "100000"));
    int dim = atoi(arg(argc, argv, "--dim", "512"));
    int nc = atoi(arg(argc, argv, "--centres", "4096"));
    double spread = atof(arg(argc, argv, "--spread", "0.75"));
    int intr = atoi(arg(argc, argv, "--intrinsic", "0"));
    rng_state = (uint64_t)atoll(arg(argc, argv, "--seed", "1"));
    if (n < 1 || dim < 1 || nc < 1 || intr < 0 || intr > dim) {
        fprintf(stderr, "vbench gen: bad arguments\n");
        return 2;
    }
    float *cent = malloc(sizeof(float) * (size_t)nc * dim);
    float *basis = intr ? malloc(sizeof(float) * (size_t)intr * dim) : NULL;
    float *v = malloc(sizeof(float) * (size_t)dim);
    FILE *f = fopen(out, "wb");
    if (!cent || (intr && !basis) || !v || !f) {
        fprintf(stderr, "vbench gen: %s\n", f ? "out of memory" : strerror(errno));
        return 1;
    }
    for (long j = 0; j < nc; j++) {
        for (int i = 0; i < dim; i++)
            cent[j * dim + i] = (float)gauss();
        normalise(cent + j * dim, dim);
    }
    for (int j = 0; j < intr; j++) { /* random unit directions spanning the noise subspace */
        for (int i = 0; i < dim; i++)
            basis[(size_t)j * dim + i] = (float)gauss();
        normalise(basis + (size_t)j * dim, dim);
    }
    for (long r = 0; r < n; r++) {
        const float *c = cent + (rnd64() % (uint64_t)nc) * (uint64_t)dim;
        if (!intr) {
            double s = spread / sqrt((double)dim);
            for (int i = 0; i < dim; i++)
                v[i] = c[i] + (float)(s * gauss());
        } else {
            memcpy(v, c, sizeof(float) * (size_t)dim);
            double s = spread / sqrt((double)intr);
            for (int j = 0; j < intr; j++) {
                float z = (float)(s * gauss());
                const float *b = basis + (size_t)j * dim;
                for (int i = 0; i < dim; i++)
                    v[i] += z * b[i];
            }
        }
        normalise(v, dim);
        if (fwrite(v, sizeof(float), (size_t)dim, f) != (size_t)dim) {
            fprintf(stderr, "vbench gen: write: %s\n", strerror(errno));
            return 1;
        }
    }
    fclose(f);
    free(cent);
    free(basis);
    free(v);
    return 0;
}

typedef struct data {
    const float *v;
    long rows;
    int dim;
} data;

static int map_file(const char *path, int dim, data *d) {
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "vbench: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t row = sizeof(float) * (size_t)dim;
    if (st.st_size == 0 || (size_t)st.st_size % row) {
        fprintf(stderr, "vbench: %s: size %lld is not a multiple of %zu (dim %d)\n", path,
                (long long)st.st_size, row, dim);
        return -1;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        fprintf(stderr, "vbench: mmap %s: %s\n", path, strerror(errno));
        return -1;
    }
    d->v = p;
    d->rows = (long)((size_t)st.st_size / row);
    d->dim = dim;
    return 0;
}

typedef struct gt {
    uint64_t id;
    float sim;
    float pad;
} gt;

/* Exact top-1 of each query over rows [0, n): cached in path when given. */
static gt *ground_truth(const data *d, long n, long q, const char *path) {
    gt *g = calloc((size_t)q, sizeof(*g));
    if (!g)
        return NULL;
    if (path) {
        FILE *f = fopen(path, "rb");
        if (f) {
            long meta[3];
            int ok = fread(meta, sizeof(meta), 1, f) == 1 && meta[0] == n && meta[1] == q &&
                     meta[2] == d->dim && fread(g, sizeof(*g), (size_t)q, f) == (size_t)q;
            fclose(f);
            if (ok)
                return g;
        }
    }
    double t0 = now_s();
    const float *qs = d->v + (size_t)(d->rows - q) * d->dim;
    for (long i = 0; i < q; i++)
        g[i].sim = -INFINITY;
    cg_v_kernels_init();
    /* rows in blocks that stay in cache while every query passes over them */
    for (long r0 = 0; r0 < n; r0 += 256) {
        long r1 = r0 + 256 < n ? r0 + 256 : n;
        for (long i = 0; i < q; i++) {
            const float *a = qs + (size_t)i * d->dim;
            for (long r = r0; r < r1; r++) {
                float s = cg_v_dot(a, d->v + (size_t)r * d->dim, d->dim);
                if (s > g[i].sim) {
                    g[i].sim = s;
                    g[i].id = (uint64_t)r;
                }
            }
        }
    }
    fprintf(stderr, "ground truth: %ld queries x %ld rows in %.1f s\n", q, n, now_s() - t0);
    if (path) {
        FILE *f = fopen(path, "wb");
        long meta[3] = {n, q, d->dim};
        if (f) {
            fwrite(meta, sizeof(meta), 1, f);
            fwrite(g, sizeof(*g), (size_t)q, f);
            fclose(f);
        }
    }
    return g;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A hit counts when it is the exact neighbour or ties its similarity. */
static int correct(const cg_vhit *h, int nh, const gt *g) {
    return nh > 0 && (h[0].id == g->id || h[0].similarity >= g->sim - 1e-6f);
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct lookups {
    double recall, p50, p99, mean, cpu50, cpu99;
} lookups;

/* q single-thread k=1 lookups at ef after 200 warm-up ones: wall-clock and
 * thread-CPU latency (CPU time leaves out the time the thread waited for a
 * core, which dominates p99 on a shared machine). */
static int measure(cg_vindex *ix, const float *qs, long q, int dim, int ef, const gt *g,
                   lookups *r) {
    double *lat = malloc(sizeof(double) * (size_t)q);
    double *cpu = malloc(sizeof(double) * (size_t)q);
    if (!lat || !cpu)
        return -1;
    cg_vhit h[1];
    for (long i = 0; i < q && i < 200; i++) /* warm-up */
        cg_vindex_search_ef(ix, qs + (size_t)i * dim, 1, ef, h);
    long ok = 0;
    double sum = 0;
    for (long i = 0; i < q; i++) {
        double c = cpu_s(), a = now_s();
        int nh = cg_vindex_search_ef(ix, qs + (size_t)i * dim, 1, ef, h);
        lat[i] = (now_s() - a) * 1e6;
        cpu[i] = (cpu_s() - c) * 1e6;
        sum += lat[i];
        ok += correct(h, nh, &g[i]);
    }
    qsort(lat, (size_t)q, sizeof(double), cmp_double);
    qsort(cpu, (size_t)q, sizeof(double), cmp_double);
    r->recall = (double)ok / q;
    r->p50 = lat[q / 2];
    r->p99 = lat[(long)(q * 0.99)];
    r->mean = sum / q;
    r->cpu50 = cpu[q / 2];
    r->cpu99 = cpu[(long)(q * 0.99)];
    printf("ef_search %4d: recall@1 %.4f, lookup p50 %.1f us, p99 %.1f us, mean %.1f us; "
           "thread CPU p50 %.1f us, p99 %.1f us\n",
           ef, r->recall, r->p50, r->p99, r->mean, r->cpu50, r->cpu99);
    fflush(stdout);
    free(lat);
    free(cpu);
    return 0;
}

static int cmd_run(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: vbench run FILE --dim D --queries Q [...]\n");
        return 2;
    }
    int dim = atoi(arg(argc, argv, "--dim", "512"));
    long q = atol(arg(argc, argv, "--queries", "1000"));
    data d;
    if (map_file(argv[2], dim, &d) != 0)
        return 1;
    long n = atol(arg(argc, argv, "--n", "0"));
    if (n <= 0 || n > d.rows - q)
        n = d.rows - q;
    if (n < 1 || q < 1) {
        fprintf(stderr, "vbench run: need rows > queries\n");
        return 2;
    }
    cg_vindex_opts o = {
        .M = atoi(arg(argc, argv, "--M", "16")),
        .ef_construction = atoi(arg(argc, argv, "--efc", "200")),
        .max_elements = (uint32_t)n,
        .brute_threshold = (uint32_t)atol(arg(argc, argv, "--brute", "2048")),
    };
    const char *efs = arg(argc, argv, "--ef", "16,32,64,128");
    const char *tsv = arg(argc, argv, "--tsv", NULL);
    const char *label = arg(argc, argv, "--label", argv[2]);
    long rss0 = rss_anon_kb();
    cg_vindex *ix = cg_vindex_new(dim, &o);
    if (!ix) {
        fprintf(stderr, "vbench run: cannot create index\n");
        return 1;
    }
    double t0 = now_s(), tl = t0;
    for (long i = 0; i < n; i++) {
        int rc = cg_vindex_add(ix, (uint64_t)i, d.v + (size_t)i * dim);
        if (rc) {
            fprintf(stderr, "add %ld: %s\n", i, cg_vindex_strerror(rc));
            return 1;
        }
        if (now_s() - tl > 60) {
            tl = now_s();
            fprintf(stderr, "  %ld / %ld inserted, %.0f s\n", i + 1, n, tl - t0);
        }
    }
    double build = now_s() - t0;
    long rss1 = rss_anon_kb();
    size_t mem = cg_vindex_memory(ix);
    printf("data %s: %ld vectors + %ld held-out queries, dim %d, kernel %s\n", label, n, q, dim,
           cg_vindex_kernel());
    printf("build: %.1f s (%.0f inserts/s), M %d, ef_construction %d\n", build, n / build, o.M,
           o.ef_construction);
    printf("memory: index %.1f MiB (%.0f bytes/vector), RSS anon growth %.1f MiB\n",
           mem / 1048576.0, (double)mem / n, (rss1 - rss0) / 1024.0);
    gt *g = ground_truth(&d, n, q, arg(argc, argv, "--gt", NULL));
    if (!g)
        return 1;
    const float *qs = d.v + (size_t)(d.rows - q) * dim;
    FILE *tf = tsv ? fopen(tsv, "a") : NULL;
    char *list = strdup(efs);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        lookups r;
        int ef = atoi(tok);
        if (measure(ix, qs, q, dim, ef, g, &r) != 0)
            return 1;
        if (tf)
            fprintf(tf, "ours\t%s\t%ld\t%d\t%d\t%d\t%.1f\t%.1f\t%d\t%.4f\t%.1f\t%.1f\t%.1f\t%.1f\n",
                    label, n, dim, o.M, o.ef_construction, build, mem / 1048576.0, ef, r.recall,
                    r.p50, r.p99, r.cpu50, r.cpu99);
    }
    free(list);
    const char *save = arg(argc, argv, "--save", NULL);
    if (save) {
        char err[512];
        double a = now_s();
        int rc = cg_vindex_save(ix, save, err, sizeof(err));
        double b = now_s();
        cg_vindex *lx = NULL;
        if (rc == 0)
            rc = cg_vindex_load(save, &lx, err, sizeof(err));
        double c = now_s();
        if (rc) {
            printf("save/load: %s\n", err);
        } else {
            struct stat st;
            stat(save, &st);
            printf("save: %.2f s, load: %.2f s, file %.1f MiB\n", b - a, c - b,
                   st.st_size / 1048576.0);
        }
        cg_vindex_free(lx);
        if (!arg(argc, argv, "--keep", NULL))
            unlink(save);
    }
    if (tf)
        fclose(tf);
    free(g);
    cg_vindex_free(ix);
    return 0;
}

/* Exact scan vs HNSW (ef 64) on clustered data of growing size: where the
 * graph starts to pay (sets the default brute_threshold). */
static int cmd_crossover(int argc, char **argv) {
    int dim = atoi(arg(argc, argv, "--dim", "512"));
    rng_state = (uint64_t)atoll(arg(argc, argv, "--seed", "1"));
    const int sizes[] = {256, 512, 1024, 1536, 2048, 3072, 4096, 8192};
    const int nq = 2000;
    int nmax = 8192;
    float *v = malloc(sizeof(float) * (size_t)(nmax + nq) * dim);
    float *cent = malloc(sizeof(float) * 256 * (size_t)dim);
    double *lat = malloc(sizeof(double) * nq);
    if (!v || !cent || !lat)
        return 1;
    for (int j = 0; j < 256; j++) {
        for (int i = 0; i < dim; i++)
            cent[j * dim + i] = (float)gauss();
        normalise(cent + (size_t)j * dim, dim);
    }
    for (int r = 0; r < nmax + nq; r++) {
        const float *c = cent + (rnd64() % 256) * (uint64_t)dim;
        for (int i = 0; i < dim; i++)
            v[(size_t)r * dim + i] = c[i] + (float)(0.75 / sqrt(dim) * gauss());
        normalise(v + (size_t)r * dim, dim);
    }
    const float *qs = v + (size_t)nmax * dim;
    printf("n\texact_p50_us\thnsw_p50_us\thnsw_recall@1\n");
    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        int n = sizes[si];
        cg_vindex_opts o = {.brute_threshold = 1, .max_elements = (uint32_t)n};
        cg_vindex *ix = cg_vindex_new(dim, &o);
        for (int i = 0; i < n; i++)
            cg_vindex_add(ix, (uint64_t)i, v + (size_t)i * dim);
        double p50[2];
        long ok = 0;
        for (int mode = 0; mode < 2; mode++) {
            for (int i = 0; i < nq; i++) {
                cg_vhit h[1], e[1];
                double a = now_s();
                if (mode == 0)
                    cg_vindex_search_exact(ix, qs + (size_t)i * dim, 1, e);
                else
                    cg_vindex_search(ix, qs + (size_t)i * dim, 1, h);
                lat[i] = (now_s() - a) * 1e6;
                if (mode == 1) {
                    cg_vindex_search_exact(ix, qs + (size_t)i * dim, 1, e);
                    ok += h[0].id == e[0].id;
                }
            }
            qsort(lat, nq, sizeof(double), cmp_double);
            p50[mode] = lat[nq / 2];
        }
        printf("%d\t%.1f\t%.1f\t%.4f\n", n, p50[0], p50[1], (double)ok / nq);
        cg_vindex_free(ix);
    }
    free(v);
    free(cent);
    free(lat);
    return 0;
}

/* Lookups on a saved index (vbench run --save PATH --keep 1): measure again
 * without rebuilding. The index must hold rows [0, n) of FILE. */
static int cmd_query(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: vbench query INDEX FILE --dim D --queries Q --gt GT [--ef L]\n");
        return 2;
    }
    int dim = atoi(arg(argc, argv, "--dim", "512"));
    long q = atol(arg(argc, argv, "--queries", "1000"));
    data d;
    if (map_file(argv[3], dim, &d) != 0)
        return 1;
    char err[512];
    cg_vindex *ix = NULL;
    double t0 = now_s();
    if (cg_vindex_load(argv[2], &ix, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    long n = (long)cg_vindex_count(ix);
    printf(
        "index %s: %ld vectors, loaded in %.2f s, memory %.1f MiB; queries: last %ld rows of %s\n",
        argv[2], n, now_s() - t0, cg_vindex_memory(ix) / 1048576.0, q, argv[3]);
    gt *g = ground_truth(&d, n, q, arg(argc, argv, "--gt", NULL));
    if (!g)
        return 1;
    char *list = strdup(arg(argc, argv, "--ef", "16,32,64,128"));
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        lookups r;
        if (measure(ix, d.v + (size_t)(d.rows - q) * dim, q, dim, atoi(tok), g, &r) != 0)
            return 1;
    }
    free(list);
    free(g);
    cg_vindex_free(ix);
    return 0;
}

static int cmd_gt(int argc, char **argv) {
    int dim = atoi(arg(argc, argv, "--dim", "512"));
    long q = atol(arg(argc, argv, "--queries", "1000"));
    const char *path = arg(argc, argv, "--gt", NULL);
    data d;
    if (argc < 3 || !path || map_file(argv[2], dim, &d) != 0)
        return 2;
    long n = atol(arg(argc, argv, "--n", "0"));
    if (n <= 0 || n > d.rows - q)
        n = d.rows - q;
    gt *g = ground_truth(&d, n, q, path);
    free(g);
    return g ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "gen") == 0)
        return cmd_gen(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return cmd_run(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "crossover") == 0)
        return cmd_crossover(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "gt") == 0)
        return cmd_gt(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "query") == 0)
        return cmd_query(argc, argv);
    fprintf(stderr, "usage: vbench gen|run|crossover|gt|query ... (see the comment in vbench.c)\n");
    return 2;
}
