/* test_class_memo: the tier stage's per-thread memo of classifications
 * (src/route/class_memo.c).
 *
 * Owns: a stored verdict comes back only for exactly the same inputs (every
 * field of the key: text bytes, lengths, system text, header intent, output
 * tokens, turns, classifier serial, learned model); NULL and empty system
 * text and header intent count as the same (the classifier reads them
 * alike); a later put to the same slot replaces the earlier; texts longer
 * than a slot holds are not kept; another thread does not see this
 * thread's entries; classifiers get distinct serials; and memoised verdicts
 * equal the classifier's on random prompts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "route/class_memo.h"
#include "route/classify.h"

static cg_class_memo_key key(const char *user, const char *sys, const char *hdr) {
    cg_class_memo_key k = {
        .owner = 7,
        .learned = NULL,
        .user = user,
        .user_len = strlen(user),
        .system = sys,
        .system_len = sys ? strlen(sys) : 0,
        .header_intent = hdr,
        .max_output_tokens = 32,
        .turns = 2,
    };
    return k;
}

static cg_class_memo_val val(const char *intent, int tier, double p) {
    cg_class_memo_val v;
    memset(&v, 0, sizeof v);
    strncpy(v.intent, intent, sizeof v.intent - 1);
    v.tier = tier;
    v.p_strong = p;
    return v;
}

static int get(const cg_class_memo_key *k, cg_class_memo_val *out) {
    uint64_t h;
    return cg_class_memo_get(k, &h, out);
}

static void put(const cg_class_memo_key *k, const cg_class_memo_val *v) {
    uint64_t h;
    cg_class_memo_val ignored;
    cg_class_memo_get(k, &h, &ignored);
    cg_class_memo_put(k, h, v);
}

static void test_exact_key(void **s) {
    (void)s;
    cg_class_memo_clear();
    cg_class_memo_key k = key("Say hello in one short sentence please.", "You are terse.", NULL);
    cg_class_memo_val v = val("small_talk", CG_TIER_SMALL, -1), out;
    assert_int_equal(get(&k, &out), 0);
    put(&k, &v);
    memset(&out, 0xab, sizeof out);
    assert_int_equal(get(&k, &out), 1);
    assert_string_equal(out.intent, "small_talk");
    assert_int_equal(out.tier, CG_TIER_SMALL);
    assert_true(out.p_strong == -1);

    /* the same text in another buffer is the same key */
    char copy[64];
    strcpy(copy, k.user);
    cg_class_memo_key k2 = k;
    k2.user = copy;
    assert_int_equal(get(&k2, &out), 1);

    /* any difference is another key */
    copy[3] = 'X';
    assert_int_equal(get(&k2, &out), 0);
    k2 = k;
    k2.user_len--;
    assert_int_equal(get(&k2, &out), 0);
    k2 = k;
    k2.system = "You are verbose.";
    k2.system_len = strlen(k2.system);
    assert_int_equal(get(&k2, &out), 0);
    k2 = k;
    k2.system = NULL;
    assert_int_equal(get(&k2, &out), 0);
    k2 = k;
    k2.header_intent = "translate";
    assert_int_equal(get(&k2, &out), 0);
    k2 = k;
    k2.max_output_tokens = 33;
    assert_int_equal(get(&k2, &out), 0);
    k2 = k;
    k2.turns = 3;
    assert_int_equal(get(&k2, &out), 0);
    k2 = k;
    k2.user_full_len = 100000;
    assert_int_equal(get(&k2, &out), 0);
    k2 = k;
    k2.owner = 8;
    assert_int_equal(get(&k2, &out), 0);
    k2 = k;
    k2.learned = &k2;
    assert_int_equal(get(&k2, &out), 0);
    assert_int_equal(get(&k, &out), 1);
}

static void test_null_is_empty(void **s) {
    (void)s;
    cg_class_memo_clear();
    cg_class_memo_key k = key("hello", NULL, NULL), k2 = key("hello", "", "");
    cg_class_memo_val v = val("", CG_TIER_MEDIUM, 0.25), out;
    put(&k, &v);
    assert_int_equal(get(&k2, &out), 1);
    assert_int_equal(out.tier, CG_TIER_MEDIUM);
    assert_true(out.p_strong == 0.25);
    /* an empty prompt is a key like any other */
    cg_class_memo_key e = key("", NULL, NULL);
    put(&e, &v);
    assert_int_equal(get(&e, &out), 1);
}

static void test_replace_and_too_long(void **s) {
    (void)s;
    cg_class_memo_clear();
    cg_class_memo_key k = key("what is 2+2?", NULL, "math");
    cg_class_memo_val a = val("math", CG_TIER_SMALL, -1), b = val("math", CG_TIER_LARGE, -1), out;
    put(&k, &a);
    put(&k, &b);
    assert_int_equal(get(&k, &out), 1);
    assert_int_equal(out.tier, CG_TIER_LARGE);

    char *big = malloc(CG_CLASS_MEMO_TEXT_MAX + 2);
    assert_non_null(big);
    memset(big, 'a', CG_CLASS_MEMO_TEXT_MAX + 1);
    big[CG_CLASS_MEMO_TEXT_MAX + 1] = '\0';
    cg_class_memo_key kb = key(big, NULL, NULL);
    put(&kb, &a);
    assert_int_equal(get(&kb, &out), 0);
    big[CG_CLASS_MEMO_TEXT_MAX] = '\0'; /* exactly a slot's worth is kept */
    kb = key(big, NULL, NULL);
    put(&kb, &a);
    assert_int_equal(get(&kb, &out), 1);
    /* user + system together over the limit: not kept */
    big[CG_CLASS_MEMO_TEXT_MAX - 2] = '\0';
    kb = key(big, "sys", NULL);
    put(&kb, &a);
    assert_int_equal(get(&kb, &out), 0);
    free(big);
}

static void *other_thread(void *arg) {
    cg_class_memo_val out;
    return (void *)(intptr_t)get(arg, &out);
}

static void test_per_thread(void **s) {
    (void)s;
    cg_class_memo_clear();
    cg_class_memo_key k = key("thread-local?", NULL, NULL);
    cg_class_memo_val v = val("", CG_TIER_SMALL, -1), out;
    put(&k, &v);
    assert_int_equal(get(&k, &out), 1);
    pthread_t t;
    void *res = (void *)1;
    assert_int_equal(pthread_create(&t, NULL, other_thread, &k), 0);
    assert_int_equal(pthread_join(t, &res), 0);
    assert_int_equal((int)(intptr_t)res, 0);
}

/* Random prompts from a few words, drawn again and again from a small pool
 * (so that many are memo hits): every memo answer is what the classifier
 * says. */
static void test_matches_classifier(void **s) {
    (void)s;
    cg_class_memo_clear();
    char err[256];
    cg_classifier *c = cg_classifier_new(NULL, err, sizeof err);
    cg_classifier *c2 = cg_classifier_new(NULL, err, sizeof err);
    assert_non_null(c);
    assert_non_null(c2);
    assert_true(cg_classifier_serial(c) != 0);
    assert_true(cg_classifier_serial(c) != cg_classifier_serial(c2));
    assert_int_equal(cg_classifier_serial(NULL), 0);
    static const char *const words[] = {
        "hello",    "translate", "this",   "prove",        "that", "the", "function", "def f(x):",
        "optimize", "번역해",    "요약해", "step by step", "why",  "1.",  "?",        "\n",
    };
    enum { POOL = 12 };
    char pool[POOL][256];
    int64_t pool_max[POOL];
    uint32_t seed = 12345;
    for (int p = 0; p < POOL; p++) {
        size_t n = 0;
        seed = seed * 1103515245u + 12345u;
        int nw = 1 + (int)((seed >> 16) % 6);
        for (int w = 0; w < nw; w++) {
            seed = seed * 1103515245u + 12345u;
            const char *wd = words[(seed >> 16) % (sizeof words / sizeof words[0])];
            size_t l = strlen(wd);
            memcpy(pool[p] + n, wd, l);
            n += l;
            pool[p][n++] = ' ';
        }
        pool[p][n] = '\0';
        pool_max[p] = p % 3 == 0 ? 4000 : 32;
    }
    int hits = 0;
    for (int round = 0; round < 3000; round++) {
        seed = seed * 1103515245u + 12345u;
        int p = (int)((seed >> 16) % POOL);
        const cg_classifier *cl = round % 7 == 0 ? c2 : c;
        size_t n = strlen(pool[p]);
        cg_class_input in = {
            .user = pool[p], .user_len = n, .max_output_tokens = pool_max[p], .turns = 2};
        cg_class_memo_key k = {.owner = cg_classifier_serial(cl),
                               .user = pool[p],
                               .user_len = n,
                               .max_output_tokens = pool_max[p],
                               .turns = 2};
        cg_class_result res;
        assert_int_equal(cg_classify(cl, &in, &res), 0);
        uint64_t h;
        cg_class_memo_val v;
        if (cg_class_memo_get(&k, &h, &v)) {
            hits++;
            assert_string_equal(v.intent, res.intent);
            assert_int_equal(v.tier, res.tier);
        } else {
            memcpy(v.intent, res.intent, sizeof v.intent);
            v.tier = res.tier;
            v.p_strong = -1;
            cg_class_memo_put(&k, h, &v);
        }
    }
    assert_true(hits > 300);
    cg_classifier_free(c);
    cg_classifier_free(c2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_key),
        cmocka_unit_test(test_null_is_empty),
        cmocka_unit_test(test_replace_and_too_long),
        cmocka_unit_test(test_per_thread),
        cmocka_unit_test(test_matches_classifier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
