/* test_find: core/find's cg_memmem returns exactly what memmem(3) returns:
 * edge cases (empty needle, needle longer than the haystack, match at either
 * end, a needle of one and of two bytes, a haystack shorter and longer than
 * the 16-byte block, matches straddling blocks) and 200,000 random cases over
 * a small alphabet, where partial matches are frequent. cg_find_eol finds
 * the first CR or LF and cg_find2 the first of two bytes as plain loops do;
 * cg_json_plain_len stops exactly where a byte-by-byte JSON string scan
 * would (quote, backslash, control byte, byte >= 0x80), cg_header_ctl_len
 * where a header value check would (a control byte but tab, DEL). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/find.h"

static void same(const char *h, size_t n, const char *nd, size_t nl) {
    const char *want = memmem(h, n, nd, nl);
    const char *got = cg_memmem(h, n, nd, nl);
    if (want != got)
        fail_msg("haystack %zu bytes, needle %zu bytes: memmem at %td, cg_memmem at %td", n, nl,
                 want ? want - h : (ptrdiff_t)-1, got ? got - h : (ptrdiff_t)-1);
}

static void test_edges(void **state) {
    (void)state;
    const char *h = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9}}";
    size_t n = strlen(h);
    same(h, n, "", 0);
    same(h, 0, "x", 1);
    same(h, 3, "data", 4);
    same(h, n, "data", 4);             /* at the start */
    same(h, n, "9}}", 3);              /* at the end */
    same(h, n, "\"usage\":{", 9);      /* across the first block */
    same(h, n, "\"choices\": []", 13); /* absent */
    same(h, n, "}", 1);
    same(h, n, "}}", 2);
    same(h, n, h, n);     /* the whole haystack */
    same(h, n - 1, h, n); /* one byte too long */
    const char *aa = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab";
    same(aa, strlen(aa), "aab", 3);
    same(aa, strlen(aa), "ab", 2);
    same(aa, strlen(aa), "ba", 2);
    for (size_t k = 0; k + 3 <= strlen(aa); k++)
        same(aa + k, strlen(aa) - k, "aaab", 4);
}

static void test_random(void **state) {
    (void)state;
    uint64_t s = 0x9e3779b97f4a7c15ull;
    char h[300], nd[40];
    for (int t = 0; t < 200000; t++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        size_t n = (size_t)(s % 200), nl = (size_t)((s >> 20) % 12);
        int alpha = 2 + (int)((s >> 30) % 3); /* 2..4 letters: many near misses */
        for (size_t i = 0; i < n; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            h[i] = (char)('a' + (int)(s % (uint64_t)alpha));
        }
        if (nl && n >= nl && (s & 1)) { /* half the time a needle taken from the haystack */
            size_t at = (size_t)((s >> 8) % (n - nl + 1));
            memcpy(nd, h + at, nl);
        } else {
            for (size_t i = 0; i < nl; i++) {
                s ^= s << 13, s ^= s >> 7, s ^= s << 17;
                nd[i] = (char)('a' + (int)(s % (uint64_t)alpha));
            }
        }
        same(h, n, nd, nl);
    }
}

/* cg_find_eol against a plain loop, at every length and position. */
static void test_eol(void **state) {
    (void)state;
    char buf[80];
    uint64_t s = 12345;
    for (int t = 0; t < 20000; t++) {
        size_t n = (size_t)(t % 70);
        for (size_t i = 0; i < n; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            unsigned r = (unsigned)(s % 64);
            buf[i] = r == 0 ? '\r' : r == 1 ? '\n' : (char)('a' + r % 26);
        }
        size_t want = 0;
        while (want < n && buf[want] != '\r' && buf[want] != '\n')
            want++;
        assert_int_equal(cg_find_eol(buf, n), want);
    }
}

/* cg_find2 = a plain loop for either byte, at every length around the
 * 16-byte blocks, with the bytes rare, frequent, equal (a == b) or absent;
 * a start at every offset so loads cross any alignment. */
static void test_find2(void **state) {
    (void)state;
    char buf[96];
    uint64_t s = 777;
    for (int t = 0; t < 40000; t++) {
        size_t n = (size_t)(t % 90), off = (size_t)(t % 5);
        unsigned every = 3 + (unsigned)(t % 61);
        for (size_t i = 0; i < n + off; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            unsigned r = (unsigned)(s % every);
            buf[i] = r == 0 ? '"' : r == 1 ? '\\' : (char)('a' + (s >> 8) % 26);
        }
        const char *p = buf + off;
        char a = '"', b = t % 3 == 0 ? '"' : t % 3 == 1 ? '\\' : 'z';
        size_t want = 0;
        while (want < n && p[want] != a && p[want] != b)
            want++;
        assert_int_equal(cg_find2(p, n, a, b), want);
    }
    assert_int_equal(cg_find2("", 0, '"', '\\'), 0);
    assert_int_equal(cg_find2("abcdefghijklmnopqrstuvwxyz\"", 27, '"', '\\'), 26);
}

typedef size_t (*scan_fn)(const char *p, size_t n);

/* The byte-by-byte scans the two 16-byte helpers stand for. */
static int json_stop(unsigned char c) {
    return c < 0x20 || c >= 0x80 || c == '"' || c == '\\';
}
static int ctl_stop(unsigned char c) {
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* fn stops where stop() first holds: at every length around the 16-byte
 * blocks and every start offset, with the bytes of edge (stopping ones and
 * their neighbours) rare or frequent among letters; then each byte value
 * alone, at each position of a 40-byte run. */
static void check_scan(scan_fn fn, int (*stop)(unsigned char), const unsigned char *edge,
                       size_t n_edge, uint64_t s) {
    char buf[112];
    for (int t = 0; t < 60000; t++) {
        size_t n = (size_t)(t % 100), off = (size_t)(t % 7);
        unsigned every = 2 + (unsigned)(t % 97);
        for (size_t i = 0; i < n + off; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            buf[i] = (s % every) ? (char)('a' + s % 26) : (char)edge[(s >> 8) % n_edge];
        }
        size_t want = n;
        for (size_t i = 0; i < n && want == n; i++)
            if (stop((unsigned char)buf[off + i]))
                want = i;
        size_t got = fn(buf + off, n);
        if (want != got)
            fail_msg("length %zu at offset %zu: %zu, not %zu", n, off, got, want);
    }
    for (unsigned c = 0; c < 256; c++)
        for (size_t at = 0; at < 40; at++) {
            memset(buf, 'x', 40);
            buf[at] = (char)c;
            assert_int_equal(fn(buf, 40), stop((unsigned char)c) ? at : 40);
        }
}

static void test_json_plain_len(void **state) {
    (void)state;
    static const unsigned char edge[] = {'"', '\\', 0x00, 0x1f, 0x20, 0x7e, 0x7f, 0x80, 0xc3, 0xff};
    check_scan(cg_json_plain_len, json_stop, edge, sizeof edge, 4242);
}

static void test_header_ctl_len(void **state) {
    (void)state;
    static const unsigned char edge[] = {'\t', 0x00, 0x0a, 0x1f, 0x20, 0x7e, 0x7f, 0x80, 0xff};
    check_scan(cg_header_ctl_len, ctl_stop, edge, sizeof edge, 31337);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_eol),
        cmocka_unit_test(test_find2),
        cmocka_unit_test(test_json_plain_len),
        cmocka_unit_test(test_header_ctl_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
