/* fuzz_sse: libFuzzer target for the incremental SSE parser and the
 * adapters' stream monitors.
 *
 * Owns: feeding arbitrary bytes to cg_sse_feed in chunks whose sizes are
 * derived from a seed hashed from the first bytes of the input (so the same
 * stream is cut at many different places), with a callback that runs both
 * adapters' on_event (OpenAI and Anthropic) on every event. Invariants
 * (abort() on violation):
 *  - the raw bytes of the emitted events followed by the bytes still pending
 *    (cg_sse_pending) are exactly the input;
 *  - the events (raw, event name, joined data) are the same whether the input
 *    is fed in chunks or all at once: chunk boundaries never change parsing;
 *  - with a small per-event cap and a callback that asks to stop after k
 *    events, cg_sse_feed returns -1 or exactly the callback's value, every
 *    emitted event fits the cap, and the events seen are a prefix of the
 *    uncapped sequence;
 *  - on_event sets forward/terminal to 0 or 1 and never leaves a negative
 *    usage count or character count behind.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider/provider.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_sse: invariant failed: %s (line %d)\n", #c, __LINE__);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define BIG_CAP (8u << 20)

typedef struct sink {
    cg_buf log;     /* every event, serialised: lengths and bytes */
    cg_buf raw;     /* concatenated raw bytes */
    cg_req *rq[2];  /* OpenAI and Anthropic request states, or NULL */
    size_t cap;     /* per-event cap the parser was given */
    int stop_after; /* return stop_rc once this many events were seen; 0 = never */
    int stop_rc;
    int n;
} sink;

static void log_bytes(cg_buf *b, const char *p, size_t n) {
    CHECK(cg_buf_append(b, &n, sizeof n) == 0);
    CHECK(cg_buf_append(b, p, n) == 0);
}

static void check_usage(const cg_req *r) {
    const cg_usage *u = &r->usage;
    CHECK(u->input >= 0 && u->cached_read >= 0 && u->cache_write_5m >= 0);
    CHECK(u->cache_write_1h >= 0 && u->output >= 0 && u->reasoning >= 0);
    CHECK(u->embedding >= 0 && u->web_searches >= 0);
    CHECK(r->out_chars >= 0);
    CHECK(r->usage_seen >= 0 && r->usage_seen <= 2);
}

static int on_ev(void *arg, const cg_sse_event *ev) {
    sink *s = arg;
    CHECK(ev->raw_len > 0 && ev->raw_len <= s->cap);
    CHECK(ev->event_len == strlen(ev->event) && ev->event_len < 64);
    CHECK(ev->data[ev->data_len] == '\0' || ev->data_len == 0);
    log_bytes(&s->log, ev->raw, ev->raw_len);
    log_bytes(&s->log, ev->event, ev->event_len);
    log_bytes(&s->log, ev->data, ev->data_len);
    CHECK(cg_buf_append(&s->raw, ev->raw, ev->raw_len) == 0);
    for (int i = 0; i < 2; i++) {
        cg_req *r = s->rq[i];
        if (!r)
            continue;
        int forward = 7, terminal = 7;
        r->ops->on_event(r, ev, &forward, &terminal);
        CHECK(forward == 0 || forward == 1);
        CHECK(terminal == 0 || terminal == 1);
        check_usage(r);
    }
    s->n++;
    return s->stop_after && s->n >= s->stop_after ? s->stop_rc : 0;
}

static void sink_init(sink *s, size_t cap) {
    memset(s, 0, sizeof *s);
    cg_buf_init(&s->log, BIG_CAP * 4);
    cg_buf_init(&s->raw, BIG_CAP);
    s->cap = cap;
}

static void sink_free(sink *s) {
    cg_buf_free(&s->log);
    cg_buf_free(&s->raw);
}

static cg_req *req_new(const cg_provider_ops *ops, int client_usage) {
    cg_req *r = calloc(1, sizeof *r);
    CHECK(r != NULL);
    r->ops = ops;
    r->api = ops->api;
    r->ep = ops == &cg_provider_anthropic ? CG_EP_MESSAGES : CG_EP_CHAT;
    r->stream = 1;
    r->client_usage = client_usage;
    return r;
}

/* xorshift64*: the chunk sizes. */
static uint64_t next(uint64_t *x) {
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * UINT64_C(2685821657736338717);
}

/* Feeds data in chunks drawn from the seed; returns the first non-zero
 * cg_sse_feed result (feeding stops there) or 0. */
static int feed_chunked(cg_sse *p, const uint8_t *data, size_t size, uint64_t seed, sink *s) {
    uint64_t x = seed | 1;
    /* chunk sizes up to 2^k bytes, k from the seed: 1 (byte at a time) .. 256 */
    unsigned maxlog = (unsigned)(seed % 9);
    size_t off = 0;
    while (off < size) {
        size_t n = 1 + (size_t)(next(&x) % ((uint64_t)1 << maxlog));
        if (n > size - off)
            n = size - off;
        int rc = cg_sse_feed(p, (const char *)data + off, n, on_ev, s);
        if (rc)
            return rc;
        off += n;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > BIG_CAP / 2)
        return 0;
    uint64_t seed = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < size && i < 8; i++)
        seed = (seed ^ data[i]) * UINT64_C(1099511628211);

    /* 1. chunked, uncapped, both adapters watching */
    sink a;
    sink_init(&a, BIG_CAP);
    a.rq[0] = req_new(&cg_provider_openai, (int)(seed >> 40) & 1);
    a.rq[1] = req_new(&cg_provider_anthropic, 0);
    cg_sse pa;
    cg_sse_init(&pa, BIG_CAP);
    CHECK(feed_chunked(&pa, data, size, seed, &a) == 0);
    CHECK(a.raw.len + cg_sse_pending(&pa) == size);
    CHECK(a.raw.len == 0 || memcmp(a.raw.data, data, a.raw.len) == 0);
    CHECK(cg_sse_pending(&pa) == 0 ||
          memcmp(pa.pending.data, data + a.raw.len, cg_sse_pending(&pa)) == 0);

    /* 2. all at once: the same events */
    sink b;
    sink_init(&b, BIG_CAP);
    cg_sse pb;
    cg_sse_init(&pb, BIG_CAP);
    CHECK(cg_sse_feed(&pb, (const char *)data, size, on_ev, &b) == 0);
    CHECK(b.n == a.n);
    CHECK(b.log.len == a.log.len &&
          (a.log.len == 0 || memcmp(b.log.data, a.log.data, a.log.len) == 0));
    CHECK(cg_sse_pending(&pb) == cg_sse_pending(&pa));

    /* 3. small cap and an early stop: -1 or the callback's value, and a prefix */
    sink c;
    size_t cap = 1 + (size_t)((seed >> 8) % 512);
    sink_init(&c, cap);
    c.stop_after = (int)((seed >> 20) % 8);
    c.stop_rc = 1 + (int)((seed >> 24) % 100);
    cg_sse pc;
    cg_sse_init(&pc, cap);
    int rc = feed_chunked(&pc, data, size, seed, &c);
    CHECK(rc == 0 || rc == -1 || (rc == c.stop_rc && c.n == c.stop_after));
    if (rc == 0)
        CHECK(c.n == a.n && (c.stop_after == 0 || c.n < c.stop_after));
    CHECK(cg_sse_pending(&pc) <= cap);
    CHECK(c.log.len <= a.log.len &&
          (c.log.len == 0 || memcmp(c.log.data, a.log.data, c.log.len) == 0));

    cg_sse_free(&pa);
    cg_sse_free(&pb);
    cg_sse_free(&pc);
    free(a.rq[0]);
    free(a.rq[1]);
    sink_free(&a);
    sink_free(&b);
    sink_free(&c);
    return 0;
}
