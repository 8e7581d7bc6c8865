/* test_hash: unit tests of src/core/hash.c.
 *
 * Owns: SHA-256 against the FIPS 180-2 / NIST test vectors (one-shot and
 * streamed in uneven pieces, split at every point), lower-case hex
 * encoding, hex decoding (either case, exact length, no stray characters)
 * and the constant-time comparison's results.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

static void sha_hex(const void *p, size_t n, char out[65]) {
    uint8_t d[32];
    cg_sha256(p, n, d);
    cg_hex(d, 32, out);
}

static void test_sha256_vectors(void **state) {
    (void)state;
    char h[65];
    sha_hex("abc", 3, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha_hex("", 0, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha_hex(two, strlen(two), h);
    assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_sha256_million_a(void **state) {
    (void)state;
    size_t n = 1000000;
    char *p = malloc(n);
    assert_non_null(p);
    memset(p, 'a', n);
    char h[65];
    sha_hex(p, n, h);
    assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(p);
}

static void test_sha256_streamed(void **state) {
    (void)state;
    /* the million-'a' vector in pieces of 1, 2, ... 127 bytes: every block
     * boundary falls inside some update */
    size_t n = 1000000, done = 0, step = 1;
    char *p = malloc(n);
    assert_non_null(p);
    memset(p, 'a', n);
    cg_sha256_ctx c;
    cg_sha256_init(&c);
    cg_sha256_update(&c, p, 0); /* an empty update changes nothing */
    while (done < n) {
        size_t k = n - done < step ? n - done : step;
        cg_sha256_update(&c, p + done, k);
        done += k;
        step = step % 127 + 1;
    }
    uint8_t d[32];
    char h[65];
    cg_sha256_final(&c, d);
    cg_hex(d, 32, h);
    assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* two updates split anywhere in 200 bytes = one-shot; the context is
     * reusable after final */
    uint8_t want[32], got[32], buf[200];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 37 + 11);
    cg_sha256(buf, sizeof buf, want);
    for (size_t cut = 0; cut <= sizeof buf; cut++) {
        cg_sha256_init(&c);
        cg_sha256_update(&c, buf, cut);
        cg_sha256_update(&c, buf + cut, sizeof buf - cut);
        cg_sha256_final(&c, got);
        assert_memory_equal(got, want, 32);
    }
    free(p);
}

static void test_sha256_binary(void **state) {
    (void)state;
    /* embedded NULs are hashed (length, not strlen) */
    uint8_t a[32], b[32];
    cg_sha256("a\0b", 3, a);
    cg_sha256("a", 1, b);
    assert_false(cg_ct_equal(a, b, 32));
}

static void test_hex(void **state) {
    (void)state;
    const uint8_t in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff};
    char out[2 * sizeof in + 1];
    memset(out, 'x', sizeof out);
    cg_hex(in, sizeof in, out);
    assert_string_equal(out, "00017f80abcdefff"); /* lower case, NUL-terminated */
    char empty[1] = {'x'};
    cg_hex(in, 0, empty);
    assert_string_equal(empty, "");
}

static void test_unhex(void **state) {
    (void)state;
    uint8_t out[4];
    assert_int_equal(cg_unhex("deadBEEF", out, 4), 0);
    const uint8_t want[] = {0xde, 0xad, 0xbe, 0xef};
    assert_memory_equal(out, want, 4);
    assert_int_equal(cg_unhex("00ff7F80", out, 4), 0);
    const uint8_t want2[] = {0x00, 0xff, 0x7f, 0x80};
    assert_memory_equal(out, want2, 4);
    assert_int_equal(cg_unhex("", out, 0), 0);
}

static void test_unhex_bad(void **state) {
    (void)state;
    uint8_t out[4];
    const char *bad[] = {
        "deadbee",   /* too short */
        "deadbeef0", /* too long */
        "deadbeeg",  /* not hex */
        "dead beef",
        "0xdeadbe",
        "deadbee ",
        " deadbee",
        "dead-eef",
        "de\xc3\xa9"
        "beef",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (cg_unhex(bad[i], out, 4) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
    /* a NUL inside ends the string: the length no longer matches */
    assert_int_equal(cg_unhex("dead\0eef", out, 4), -1);
}

static void test_hex_round_trip(void **state) {
    (void)state;
    uint8_t d[32], back[32];
    char h[65];
    cg_sha256("costgate", 8, d);
    cg_hex(d, 32, h);
    assert_int_equal(strlen(h), 64);
    assert_int_equal(cg_unhex(h, back, 32), 0);
    assert_memory_equal(d, back, 32);
    for (int i = 0; i < 64; i++) /* upper case decodes the same */
        if (h[i] >= 'a')
            h[i] = (char)(h[i] - 'a' + 'A');
    memset(back, 0, sizeof back);
    assert_int_equal(cg_unhex(h, back, 32), 0);
    assert_memory_equal(d, back, 32);
}

static void test_ct_equal(void **state) {
    (void)state;
    uint8_t a[32], b[32];
    cg_sha256("key-1", 5, a);
    memcpy(b, a, sizeof b);
    assert_true(cg_ct_equal(a, b, 32));
    b[0] ^= 1;
    assert_false(cg_ct_equal(a, b, 32));
    b[0] ^= 1;
    b[31] ^= 0x80;
    assert_false(cg_ct_equal(a, b, 32));
    assert_true(cg_ct_equal(a, b, 31)); /* only n bytes are compared */
    assert_true(cg_ct_equal(a, b, 0));
    assert_int_equal(cg_ct_equal(a, a, 32), 1); /* exactly 1 when equal */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_sha256_million_a),
        cmocka_unit_test(test_sha256_streamed),
        cmocka_unit_test(test_sha256_binary),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_unhex),
        cmocka_unit_test(test_unhex_bad),
        cmocka_unit_test(test_hex_round_trip),
        cmocka_unit_test(test_ct_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
