/* fuzz_h1: libFuzzer target for the upstream client's HTTP/1.1 response
 * parser (src/http/h1.c) and URL split.
 *
 * Owns: feeding arbitrary bytes as a response, whole and split at cut points
 * taken from the input's first two bytes, then EOF, with a small header cap
 * (so the cap is reached often). Invariants (abort() on violation):
 *  - cg_h1_next never reports more consumed bytes than it was given, and a
 *    CG_H1_AGAIN consumes everything;
 *  - body slices lie inside the input and are never empty; headers come
 *    only before the head is done; CG_H1_HEAD_DONE comes at most once;
 *  - an error carries a reason;
 *  - the outcome (events, header and body bytes, keep-alive, error) does not
 *    depend on how the input was split;
 *  - the URL split of the input (as a string) either fails with a reason or
 *    gives a host, a port in 1..65535 and a target of printable bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_h1: invariant failed: %s (line %d)\n", #c, __LINE__);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct outcome {
    cg_h1_event last;
    int head_done, status, keep_alive;
    uint64_t hash;  /* of the headers, in order */
    uint64_t bhash; /* of the body bytes (however sliced) */
    size_t body;
    char error[112];
} outcome;

static uint64_t bytes(uint64_t h, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint64_t)(unsigned char)p[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t mix(uint64_t h, const char *p, size_t n, char tag) {
    h = (h ^ (uint64_t)(unsigned char)tag) * 0x100000001b3ull;
    h = (h ^ (uint64_t)n) * 0x100000001b3ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint64_t)(unsigned char)p[i]) * 0x100000001b3ull;
    return h;
}

static void run(const char *in, size_t n, size_t cut1, size_t cut2, outcome *o) {
    cg_h1_parser p;
    cg_h1_init(&p, 512);
    memset(o, 0, sizeof *o);
    o->hash = o->bhash = 0xcbf29ce484222325ull;
    size_t cuts[3] = {cut1, cut2, n}, from = 0;
    cg_h1_event ev = CG_H1_AGAIN;
    for (int c = 0; c < 3 && ev != CG_H1_DONE && ev != CG_H1_ERROR; c++) {
        size_t to = cuts[c] < from ? from : cuts[c] > n ? n : cuts[c];
        size_t off = from;
        for (;;) {
            size_t used;
            cg_h1_span a = {0}, b = {0};
            ev = cg_h1_next(&p, in + off, to - off, &used, &a, &b);
            CHECK(used <= to - off);
            off += used;
            if (ev == CG_H1_HEADER) {
                CHECK(!o->head_done);
                o->hash = mix(o->hash, a.p, a.n, 'n');
                o->hash = mix(o->hash, b.p, b.n, 'v');
            } else if (ev == CG_H1_HEAD_DONE) {
                CHECK(!o->head_done);
                o->head_done = 1;
                o->status = p.status;
                CHECK(p.status >= 200 && p.status <= 999);
            } else if (ev == CG_H1_BODY) {
                CHECK(o->head_done);
                CHECK(a.n > 0 && a.p >= in && a.p + a.n <= in + to);
                o->bhash = bytes(o->bhash, a.p, a.n);
                o->body += a.n;
            } else {
                break;
            }
        }
        if (ev == CG_H1_AGAIN)
            CHECK(off == to);
        from = to;
    }
    if (ev == CG_H1_AGAIN)
        ev = cg_h1_eof(&p);
    o->last = ev;
    CHECK(ev == CG_H1_DONE || ev == CG_H1_ERROR);
    if (ev == CG_H1_DONE)
        o->keep_alive = cg_h1_keep_alive(&p);
    if (ev == CG_H1_ERROR) {
        CHECK(p.error[0] != '\0');
        snprintf(o->error, sizeof o->error, "%s", p.error);
    }
    CHECK(o->body <= n);
    cg_h1_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *in = (const char *)data;
    outcome whole, split;
    run(in, size, size, size, &whole);
    size_t c1 = size ? data[0] % (size + 1) : 0;
    size_t c2 = size > 1 ? c1 + data[1] % (size - c1 + 1) : c1;
    run(in, size, c1, c2, &split);
    CHECK(whole.last == split.last && whole.head_done == split.head_done);
    CHECK(whole.status == split.status && whole.keep_alive == split.keep_alive);
    CHECK(whole.hash == split.hash && whole.bhash == split.bhash && whole.body == split.body);
    CHECK(strcmp(whole.error, split.error) == 0);

    char url[512];
    size_t un = size < sizeof url - 1 ? size : sizeof url - 1;
    memcpy(url, in, un);
    url[un] = '\0';
    cg_h1_url u;
    char err[128] = "";
    if (cg_h1_url_parse(url, &u, err, sizeof err) == 0) {
        CHECK(u.host[0] != '\0' && u.port >= 1 && u.port <= 65535);
        CHECK(u.target_len <= CG_H1_TARGET_MAX);
        for (size_t i = 0; i < u.target_len; i++)
            CHECK((unsigned char)u.target[i] > ' ' && u.target[i] != 0x7f);
    } else {
        CHECK(err[0] != '\0');
    }
    return 0;
}
