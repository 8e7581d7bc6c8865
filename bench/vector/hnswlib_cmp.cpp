/* hnswlib_cmp: vbench's "run" measurements on Debian's hnswlib 0.6.2.
 *
 * Owns: nothing the product uses. It exists so the choice between hnswlib
 * and our own HNSW (docs/vector.md) rests on numbers taken on the same
 * data, the same held-out queries and the same ground truth file (written
 * by `vbench gt`). Same parameters: M, ef_construction, ef_search list,
 * inner product on normalised vectors, single-thread inserts and k=1
 * lookups.
 *
 *   vector_bench_hnswlib FILE DIM QUERIES GTFILE M EFC EF[,EF...] [SAVEPATH]
 */
#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sstream>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <vector>

static double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

static double cpu_s() {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long rss_anon_kb() {
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

struct gt {
    uint64_t id;
    float sim;
    float pad;
};

int main(int argc, char **argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: %s FILE DIM QUERIES GTFILE M EFC EF[,EF...] [SAVEPATH]\n", argv[0]);
        return 2;
    }
    int dim = atoi(argv[2]);
    long q = atol(argv[3]);
    int M = atoi(argv[5]), efc = atoi(argv[6]);
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return 1;
    const float *v = (const float *)mmap(nullptr, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    long rows = st.st_size / (4L * dim), n = rows - q;
    FILE *gf = fopen(argv[4], "rb");
    long meta[3];
    std::vector<gt> g(q);
    if (!gf || fread(meta, sizeof(meta), 1, gf) != 1 || meta[0] != n || meta[1] != q ||
        fread(g.data(), sizeof(gt), q, gf) != (size_t)q) {
        fprintf(stderr, "hnswlib_cmp: ground truth %s missing or for other data\n", argv[4]);
        return 1;
    }
    fclose(gf);
    try {
        long rss0 = rss_anon_kb();
        hnswlib::InnerProductSpace space(dim);
        hnswlib::HierarchicalNSW<float> ix(&space, n, M, efc, 100);
        double t0 = now_s();
        for (long i = 0; i < n; i++)
            ix.addPoint(v + (size_t)i * dim, (size_t)i);
        double build = now_s() - t0;
        long rss1 = rss_anon_kb();
        printf("hnswlib 0.6.2: %ld vectors, dim %d, M %d, ef_construction %d\n", n, dim, M, efc);
        printf("build: %.1f s (%.0f inserts/s); memory: RSS anon growth %.1f MiB\n", build,
               n / build, (rss1 - rss0) / 1024.0);
        const float *qs = v + (size_t)n * dim;
        std::stringstream ss(argv[7]);
        std::string tok;
        std::vector<double> lat(q), cpu(q);
        while (std::getline(ss, tok, ',')) {
            int ef = atoi(tok.c_str());
            ix.setEf(ef);
            for (long i = 0; i < q && i < 200; i++)
                ix.searchKnn(qs + (size_t)i * dim, 1);
            long ok = 0;
            for (long i = 0; i < q; i++) {
                double c = cpu_s(), a = now_s();
                auto r = ix.searchKnn(qs + (size_t)i * dim, 1);
                lat[i] = (now_s() - a) * 1e6;
                cpu[i] = (cpu_s() - c) * 1e6;
                if (!r.empty()) {
                    float sim = 1.0f - r.top().first;
                    ok += r.top().second == g[i].id || sim >= g[i].sim - 1e-6f;
                }
            }
            std::sort(lat.begin(), lat.end());
            std::sort(cpu.begin(), cpu.end());
            printf("ef_search %4d: recall@1 %.4f, lookup p50 %.1f us, p99 %.1f us; thread CPU "
                   "p50 %.1f us, p99 %.1f us\n",
                   ef, (double)ok / q, lat[q / 2], lat[(long)(q * 0.99)], cpu[q / 2],
                   cpu[(long)(q * 0.99)]);
            fflush(stdout);
        }
        if (argc > 8) {
            double a = now_s();
            ix.saveIndex(argv[8]);
            double b = now_s();
            hnswlib::HierarchicalNSW<float> lx(&space, argv[8]);
            double c = now_s();
            printf("save: %.2f s, load: %.2f s\n", b - a, c - b);
            unlink(argv[8]);
        }
    } catch (const std::exception &e) {
        fprintf(stderr, "hnswlib: %s\n", e.what());
        return 1;
    }
    return 0;
}
