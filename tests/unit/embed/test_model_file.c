/* test_model_file: validation of the embedder's model file.
 *
 * Owns: that every damaged file (missing, empty, truncated anywhere, bad
 * magic, other format version, flipped payload byte, and TOC damage with a
 * recomputed checksum: a tensor out of bounds, a missing tensor, a wrong
 * shape, a corrupt vocabulary) is refused with a message naming the
 * problem, and never crashes (this test also runs under ASan/UBSan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/hash.h"
#include "embed_test_util.h"

#define HDR 128
#define TOC 72

static uint8_t *orig;
static size_t orig_len;
static char tmp_path[] = "/tmp/cg_embed_model_XXXXXX";

static int setup(void **state) {
    (void)state;
    FILE *f = fopen(model_path(), "rb");
    if (!f) {
        fprintf(stderr, "missing %s (run scripts/setup.sh)\n", model_path());
        return -1;
    }
    fseek(f, 0, SEEK_END);
    orig_len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    orig = malloc(orig_len);
    if (!orig || fread(orig, 1, orig_len, f) != orig_len) {
        fclose(f);
        return -1;
    }
    fclose(f);
    int fd = mkstemp(tmp_path);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    unlink(tmp_path);
    free(orig);
    return 0;
}

static cg_embedder *open_generic(char *err, size_t cap) {
    cg_embed_opts o = {.isa = CG_EMBED_ISA_GENERIC};
    return cg_embed_open_opts(tmp_path, &o, err, cap);
}

static void write_tmp(const uint8_t *p, size_t n) {
    FILE *f = fopen(tmp_path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* Loading tmp_path must fail with a message containing `needle`. */
static void expect_fail(const char *needle) {
    char err[512] = "";
    cg_embedder *e = open_generic(err, sizeof err);
    if (e || !strstr(err, needle))
        fprintf(stderr, "want failure with \"%s\", got %s: \"%s\"\n", needle, e ? "success" : "",
                err);
    assert_null(e);
    assert_non_null(strstr(err, needle));
}

static uint8_t *copy(void) {
    uint8_t *c = malloc(orig_len);
    assert_non_null(c);
    memcpy(c, orig, orig_len);
    return c;
}

static void reseal(uint8_t *c) {
    cg_sha256(c + HDR, orig_len - HDR, c + 32);
}

/* TOC entry named `name`, or NULL. */
static uint8_t *toc_entry(uint8_t *c, const char *name) {
    uint32_t n;
    memcpy(&n, c + 24, 4);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *t = c + HDR + (size_t)i * TOC;
        if (strcmp((const char *)t, name) == 0)
            return t;
    }
    return NULL;
}

static void test_good_file_loads(void **state) {
    (void)state;
    write_tmp(orig, orig_len);
    char err[256];
    cg_embedder *e = open_generic(err, sizeof err);
    assert_non_null(e);
    assert_int_equal(cg_embed_dim(e), 512);
    assert_string_equal(cg_embed_isa_name(e), "generic");
    cg_embed_close(e);
    cg_embed_close(NULL);
}

static void test_missing_and_empty(void **state) {
    (void)state;
    char err[256];
    assert_null(cg_embed_open("/nonexistent/use-lite.bin", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/use-lite.bin"));
    assert_null(cg_embed_open("/tmp", err, sizeof err));
    assert_null(cg_embed_open("/nonexistent", NULL, 0)); /* no err buffer: still no crash */
    write_tmp(orig, 0);
    expect_fail("not a model file");
    write_tmp(orig, 10);
    expect_fail("not a model file");
}

static void test_truncated(void **state) {
    (void)state;
    size_t cuts[] = {HDR, HDR + 1, HDR + TOC * 3, orig_len / 2, orig_len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_tmp(orig, cuts[i]);
        expect_fail("truncated");
    }
}

static void test_header_damage(void **state) {
    (void)state;
    uint8_t *c = copy();
    c[0] = 'X';
    write_tmp(c, orig_len);
    expect_fail("bad magic");
    memcpy(c, orig, HDR);
    c[8] = 2; /* format version 2 */
    write_tmp(c, orig_len);
    expect_fail("format version 2");
    memcpy(c, orig, HDR);
    memset(c + 24, 0xff, 4); /* tensor count */
    write_tmp(c, orig_len);
    expect_fail("tensor count");
    memcpy(c, orig, HDR);
    c[orig_len - 100] ^= 0x40; /* one bit of the weights */
    write_tmp(c, orig_len);
    expect_fail("checksum mismatch");
    free(c);
}

static void test_toc_damage(void **state) {
    (void)state;
    uint8_t *c = copy();
    uint8_t *t = toc_entry(c, "l1.ffn1.w");
    assert_non_null(t);
    uint64_t big = (uint64_t)orig_len;
    memcpy(t + 56, &big, 8); /* offset past the end */
    reseal(c);
    write_tmp(c, orig_len);
    expect_fail("l1.ffn1.w: bad size or offset");

    memcpy(c, orig, orig_len);
    t = toc_entry(c, "out.b");
    t[0] = 'X'; /* renamed: missing */
    reseal(c);
    write_tmp(c, orig_len);
    expect_fail("out.b is missing");

    memcpy(c, orig, orig_len);
    t = toc_entry(c, "l0.qkv.w");
    uint32_t d = 769;
    memcpy(t + 44, &d, 4); /* shape [256, 769] */
    reseal(c);
    write_tmp(c, orig_len);
    expect_fail("l0.qkv.w: dimension 1 is 769");

    memcpy(c, orig, orig_len);
    t = toc_entry(c, "embed");
    uint32_t dt = 1; /* f64 */
    memcpy(t + 32, &dt, 4);
    reseal(c);
    write_tmp(c, orig_len);
    expect_fail("tensor embed: dtype");
    free(c);
}

static void test_vocab_damage(void **state) {
    (void)state;
    uint8_t *c = copy();
    uint8_t *t = toc_entry(c, "vocab.offsets");
    uint64_t off;
    memcpy(&off, t + 56, 8);
    int32_t *offs = (int32_t *)(c + HDR + off);
    offs[10] = offs[12]; /* piece 10 ends after piece 11 starts */
    reseal(c);
    write_tmp(c, orig_len);
    expect_fail("vocabulary entry 10 is corrupt");

    memcpy(c, orig, orig_len);
    t = toc_entry(c, "vocab.pieces");
    memcpy(&off, t + 56, 8);
    c[HDR + off + 5] = 0xff; /* a piece that is not UTF-8 */
    reseal(c);
    write_tmp(c, orig_len);
    expect_fail("not valid UTF-8");

    memcpy(c, orig, orig_len);
    t = toc_entry(c, "vocab.scores");
    memcpy(&off, t + 56, 8);
    memset(c + HDR + off + 8 * 100, 0xff, 8); /* a NaN score */
    reseal(c);
    write_tmp(c, orig_len);
    expect_fail("vocabulary entry 100 is corrupt");

    memcpy(c, orig, orig_len);
    t = toc_entry(c, "nfkc.cps");
    memcpy(&off, t + 56, 8);
    memcpy(c + HDR + off + 4 * 7, c + HDR + off + 4 * 6, 4); /* cps not increasing */
    reseal(c);
    write_tmp(c, orig_len);
    expect_fail("NFKC table entry 7 is corrupt");

    memcpy(c, orig, orig_len);
    t = toc_entry(c, "hp");
    memcpy(&off, t + 56, 8);
    int32_t heads = 3;
    memcpy(c + HDR + off + 4, &heads, 4);
    reseal(c);
    write_tmp(c, orig_len);
    expect_fail("hyper-parameters");
    free(c);
}

/* Random byte flips with a recomputed checksum: refused or loaded, never a
 * crash; whatever loads can still embed (damaged weights may give NaN, but
 * no out-of-bounds access). */
static void test_random_damage(void **state) {
    (void)state;
    uint8_t *c = copy();
    uint32_t rng = 12345;
    for (int round = 0; round < 24; round++) {
        memcpy(c, orig, orig_len);
        for (int k = 0; k < 4; k++) {
            rng = rng * 1103515245u + 12345u;
            /* mostly the TOC and small tensors at the front */
            size_t pos = HDR + (rng >> 8) % (k == 0 ? 4096 : (uint32_t)(orig_len - HDR));
            c[pos] ^= (uint8_t)(1u << (rng % 8));
        }
        reseal(c);
        write_tmp(c, orig_len);
        char err[512];
        cg_embedder *e = open_generic(err, sizeof err);
        if (e) {
            float v[CG_EMBED_DIM];
            assert_int_equal(cg_embed(e, "a short sentence", 16, v), 0);
            cg_embed_close(e);
        } else {
            assert_true(strlen(err) > 0);
        }
    }
    free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file_loads), cmocka_unit_test(test_missing_and_empty),
        cmocka_unit_test(test_truncated),       cmocka_unit_test(test_header_damage),
        cmocka_unit_test(test_toc_damage),      cmocka_unit_test(test_vocab_damage),
        cmocka_unit_test(test_random_damage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
