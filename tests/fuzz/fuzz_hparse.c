/* fuzz_hparse: libFuzzer target for the server side's request parsing
 * (src/http/hparse.c): head end, head parse, chunked bodies.
 *
 * Owns: feeding arbitrary bytes as a request, whole and split at a cut
 * point taken from the input's first byte. Invariants (abort() on
 * violation):
 *  - the head's end does not depend on how the bytes arrived, and lies
 *    inside the input;
 *  - a parsed head either fails with a status in {400, 431, 501, 505} and a
 *    reason, or gives a target, names and values that lie inside the head,
 *    are NUL-terminated there and hold no CR or LF, and framing that is
 *    never both chunked and Content-Length;
 *  - the chunked decoder never consumes more than it was given, never
 *    stores more than its cap, and its outcome (state, total, over the
 *    cap or not, and below the cap the decoded bytes) does not depend on
 *    the split.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/hparse.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_hparse: invariant failed: %s (line %d)\n", #c, __LINE__);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static size_t head_end(const char *in, size_t n, size_t cut) {
    size_t scan = 0;
    size_t e = cg_hp_head_end(in, cut, &scan);
    if (e)
        return e;
    CHECK(scan <= cut);
    return cg_hp_head_end(in, n, &scan);
}

static cg_hp_rc dechunk(const char *in, size_t n, size_t cut, cg_buf *out, uint64_t *total,
                        size_t *consumed, int *over_out) {
    cg_hp_chunked d;
    cg_hp_chunked_init(&d);
    int over = 0;
    size_t used = 0, at = 0;
    cg_hp_rc rc = cg_hp_chunked_feed(&d, in, cut, &used, out, &over);
    CHECK(used <= cut);
    at = used;
    if (rc == CG_HP_MORE && used == cut) {
        rc = cg_hp_chunked_feed(&d, in + at, n - at, &used, out, &over);
        CHECK(used <= n - at);
        at += used;
    }
    CHECK(out->len <= out->max);
    CHECK(over || out->len == d.total);
    *total = d.total;
    *consumed = at;
    *over_out = over;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    size_t n = size - 1;
    const char *in = (const char *)data + 1;
    size_t cut = n ? data[0] % (n + 1) : 0;

    size_t e1 = head_end(in, n, n), e2 = head_end(in, n, cut);
    CHECK(e1 == e2);
    CHECK(e1 <= n);
    if (e1) {
        char *h = malloc(e1 + 1);
        memcpy(h, in, e1);
        h[e1] = '\0';
        cg_hp_head hd;
        const char *why = NULL;
        int st = cg_hp_parse_head(h, e1, &hd, &why);
        if (st) {
            CHECK(st == 400 || st == 431 || st == 501 || st == 505);
            CHECK(why && *why);
        } else {
            CHECK(hd.target_off < e1 && hd.target_off + hd.target_len < e1);
            CHECK(h[hd.target_off + hd.target_len] == '\0');
            CHECK(!(hd.chunked && hd.content_length >= 0));
            CHECK(hd.n_fields <= CG_HP_MAX_HEADERS);
            for (uint32_t i = 0; i < hd.n_fields; i++) {
                const cg_hp_field *f = &hd.f[i];
                CHECK(f->name_len > 0 && f->name_off + f->name_len < e1);
                CHECK(f->val_off + f->val_len < e1);
                CHECK(h[f->name_off + f->name_len] == '\0' && h[f->val_off + f->val_len] == '\0');
                CHECK(strlen(h + f->val_off) == f->val_len);
                CHECK(!memchr(h + f->val_off, '\r', f->val_len));
                CHECK(!memchr(h + f->val_off, '\n', f->val_len));
            }
        }
        free(h);
    }

    cg_buf a, b;
    cg_buf_init(&a, 256);
    cg_buf_init(&b, 256);
    uint64_t ta, tb;
    size_t ua, ub;
    int oa, ob;
    cg_hp_rc ra = dechunk(in, n, n, &a, &ta, &ua, &oa);
    cg_hp_rc rb = dechunk(in, n, cut, &b, &tb, &ub, &ob);
    CHECK(ra == rb);
    CHECK(ta == tb);
    CHECK(oa == ob);
    if (ra == CG_HP_DONE)
        CHECK(ua == ub);
    /* past the cap the body is refused whole, so what was kept may differ */
    if (!oa)
        CHECK(a.len == b.len && memcmp(a.data ? a.data : "", b.data ? b.data : "", a.len) == 0);
    cg_buf_free(&a);
    cg_buf_free(&b);
    return 0;
}
