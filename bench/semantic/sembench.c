/* sembench: the semantic lookup's own cost (embed + search + accept decision)
 * for 20-word queries against one partition of 100,000 cached queries.
 *
 * Owns: building that partition through the semantic cache's index
 * (src/cache/semantic.h: the built-in embedder's vectors of real questions,
 * added one by one as the store does; saved with cg_semantic_save and loaded
 * on later runs), then timing single-threaded lookups of held-out queries,
 * each as the request path runs it on the pool: cg_embed, then
 * cg_semantic_lookup at the default threshold and gate. Prints the
 * distribution (p50, p90, p99, max) of the embedding, the search and the
 * total, in wall time and in thread CPU time (less sensitive to a busy
 * machine), as a table and one JSON line.
 *
 *   sembench --model var/models/use-lite.bin --index texts.txt --queries q.txt
 *            [--n 100000] [--threads 2] [--cache DIR] [--threshold 0.98]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/semantic.h"
#include "core/hash.h"
#include "embed/embed.h"

typedef struct lines {
    char **v;
    size_t n;
} lines;

static int read_lines(const char *path, lines *out, size_t max) {
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    out->v = NULL;
    out->n = 0;
    size_t vcap = 0;
    while (out->n < max && (len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (!len)
            continue;
        if (out->n == vcap) {
            vcap = vcap ? vcap * 2 : 1024;
            out->v = realloc(out->v, vcap * sizeof *out->v);
        }
        out->v[out->n++] = strdup(line);
    }
    free(line);
    fclose(f);
    return 0;
}

static double now_s(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct embed_job {
    const cg_embedder *e;
    const lines *t;
    float *vecs;
    _Atomic size_t next;
} embed_job;

static void *embed_thread(void *arg) {
    embed_job *j = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->t->n)
            break;
        cg_embed(j->e, j->t->v[i], strlen(j->t->v[i]), j->vecs + i * CG_EMBED_DIM);
    }
    return NULL;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, size_t n, double p) {
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

typedef struct dist {
    const char *name;
    double *v;
} dist;

int main(int argc, char **argv) {
    const char *model = "var/models/use-lite.bin", *index_file = NULL, *query_file = NULL,
               *cache = NULL;
    size_t n = 100000;
    int threads = 2;
    double threshold = 0.98;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model"))
            model = argv[i + 1];
        else if (!strcmp(argv[i], "--index"))
            index_file = argv[i + 1];
        else if (!strcmp(argv[i], "--queries"))
            query_file = argv[i + 1];
        else if (!strcmp(argv[i], "--cache"))
            cache = argv[i + 1];
        else if (!strcmp(argv[i], "--n"))
            n = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threshold"))
            threshold = atof(argv[i + 1]);
    }
    if (!index_file || !query_file || threads < 1) {
        fprintf(stderr, "usage: sembench --index TEXTS --queries QUERIES [--model PATH] [--n N] "
                        "[--threads T] [--cache DIR] [--threshold X]\n");
        return 2;
    }
    char err[512];
    cg_embedder *e = cg_embed_open(model, err, sizeof err);
    if (!e) {
        fprintf(stderr, "sembench: %s\n", err);
        return 1;
    }
    lines idx, qs;
    if (read_lines(index_file, &idx, n) != 0 || read_lines(query_file, &qs, 1000000) != 0) {
        fprintf(stderr, "sembench: cannot read the text files\n");
        return 1;
    }
    cg_semantic_opts o = {.dim = CG_EMBED_DIM,
                          .capacity = (uint32_t)(idx.n + 1),
                          .embedder_id = "builtin:use-lite:512"};
    cg_semantic *s = cg_semantic_new(&o, err, sizeof err);
    uint8_t part[32];
    cg_sha256("sembench partition", 18, part);
    cg_semantic_load_stats st = {0};
    if (cache && cg_semantic_load(s, cache, &st, err, sizeof err) == 0 &&
        cg_semantic_count(s) == idx.n) {
        fprintf(stderr, "sembench: loaded %zu vectors from %s\n", cg_semantic_count(s), cache);
    } else {
        cg_semantic_free(s);
        s = cg_semantic_new(&o, err, sizeof err);
        fprintf(stderr, "sembench: embedding %zu texts on %d threads...\n", idx.n, threads);
        embed_job j = {.e = e, .t = &idx, .vecs = malloc(idx.n * CG_EMBED_DIM * sizeof(float))};
        atomic_init(&j.next, 0);
        double t0 = now_s(CLOCK_MONOTONIC);
        pthread_t th[64];
        for (int i = 0; i < threads && i < 64; i++)
            pthread_create(&th[i], NULL, embed_thread, &j);
        for (int i = 0; i < threads && i < 64; i++)
            pthread_join(th[i], NULL);
        double t1 = now_s(CLOCK_MONOTONIC);
        fprintf(stderr, "sembench: embedded in %.1f s; adding to one partition...\n", t1 - t0);
        for (size_t i = 0; i < idx.n; i++) {
            uint8_t xkey[32];
            char id[32];
            snprintf(id, sizeof id, "entry %zu", i);
            cg_sha256(id, strlen(id), xkey);
            size_t len = strlen(idx.v[i]);
            if (len > CG_SEMANTIC_TEXT_MAX)
                len = CG_SEMANTIC_TEXT_MAX;
            if (cg_semantic_add(s, part, xkey, idx.v[i], len, j.vecs + i * CG_EMBED_DIM,
                                CG_EMBED_DIM) != 0) {
                fprintf(stderr, "sembench: add %zu failed\n", i);
                return 1;
            }
            if ((i + 1) % 10000 == 0)
                fprintf(stderr, "  %zu (%.0f s)\n", i + 1, now_s(CLOCK_MONOTONIC) - t1);
        }
        fprintf(stderr, "sembench: built in %.1f s\n", now_s(CLOCK_MONOTONIC) - t1);
        free(j.vecs);
        if (cache && cg_semantic_save(s, cache, err, sizeof err) != 0)
            fprintf(stderr, "sembench: not saved: %s\n", err);
    }
    size_t nq = qs.n;
    double *ew = calloc(nq, sizeof(double)), *sw = calloc(nq, sizeof(double)),
           *tw = calloc(nq, sizeof(double)), *ec = calloc(nq, sizeof(double)),
           *sc = calloc(nq, sizeof(double)), *tc = calloc(nq, sizeof(double));
    float vec[CG_EMBED_DIM];
    cg_semantic_match *m = malloc(sizeof *m);
    size_t hits = 0, warm = nq < 50 ? 0 : 20;
    for (size_t i = 0; i < warm; i++) { /* caches, page faults, the kernel's frequency */
        cg_embed(e, qs.v[i], strlen(qs.v[i]), vec);
        cg_semantic_lookup(s, part, vec, CG_EMBED_DIM, qs.v[i], strlen(qs.v[i]), threshold,
                           CG_GATE_DEFAULT_RULES, m);
    }
    for (size_t i = 0; i < nq; i++) {
        const char *q = qs.v[i];
        size_t len = strlen(q);
        double w0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_THREAD_CPUTIME_ID);
        cg_embed(e, q, len, vec);
        double w1 = now_s(CLOCK_MONOTONIC), c1 = now_s(CLOCK_THREAD_CPUTIME_ID);
        cg_semantic_lookup(s, part, vec, CG_EMBED_DIM, q, len, threshold, CG_GATE_DEFAULT_RULES, m);
        double w2 = now_s(CLOCK_MONOTONIC), c2 = now_s(CLOCK_THREAD_CPUTIME_ID);
        hits += (size_t)m->found;
        ew[i] = (w1 - w0) * 1e6;
        sw[i] = (w2 - w1) * 1e6;
        tw[i] = (w2 - w0) * 1e6;
        ec[i] = (c1 - c0) * 1e6;
        sc[i] = (c2 - c1) * 1e6;
        tc[i] = (c2 - c0) * 1e6;
    }
    dist d[] = {{"embed (wall)", ew},       {"search+gate (wall)", sw}, {"total (wall)", tw},
                {"embed (thread CPU)", ec}, {"search+gate (CPU)", sc},  {"total (thread CPU)", tc}};
    printf("semantic lookup, %zu queries of 20 words, partition of %zu vectors, threshold %.2f, "
           "%s kernels; %zu hits\n",
           nq, cg_semantic_count(s), threshold, cg_embed_isa_name(e), hits);
    printf("%-22s %9s %9s %9s %9s (microseconds)\n", "", "p50", "p90", "p99", "max");
    for (size_t k = 0; k < sizeof d / sizeof d[0]; k++) {
        qsort(d[k].v, nq, sizeof(double), cmp_d);
        printf("%-22s %9.0f %9.0f %9.0f %9.0f\n", d[k].name, pct(d[k].v, nq, 0.5),
               pct(d[k].v, nq, 0.9), pct(d[k].v, nq, 0.99), d[k].v[nq - 1]);
    }
    printf("{\"queries\":%zu,\"vectors\":%zu,\"hits\":%zu", nq, cg_semantic_count(s), hits);
    for (size_t k = 0; k < sizeof d / sizeof d[0]; k++)
        printf(",\"%s\":{\"p50\":%.0f,\"p90\":%.0f,\"p99\":%.0f,\"max\":%.0f}", d[k].name,
               pct(d[k].v, nq, 0.5), pct(d[k].v, nq, 0.9), pct(d[k].v, nq, 0.99), d[k].v[nq - 1]);
    printf("}\n");
    free(m);
    cg_semantic_free(s);
    cg_embed_close(e);
    return 0;
}
