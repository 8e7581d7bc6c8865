/* test_threads: one embedder shared by several threads.
 *
 * Owns: the thread-safety promise of embed.h: 4 threads embedding and
 * tokenizing different sentences at once, each many times and in different
 * orders, get bit-identical results to a single-threaded run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "embed_test_util.h"

#define N_TEXTS 12
#define N_THREADS 4
#define ROUNDS 6

static const char *TEXTS[N_TEXTS] = {
    "A man is playing a guitar.",
    "A woman is slicing an onion.",
    "",
    "The stock market fell sharply on Monday after the announcement.",
    "\xec\x95\x88\xeb\x85\x95\xed\x95\x98\xec\x84\xb8\xec\x9a\x94 world",
    "How do I reset my password?",
    "x",
    "Three dogs run through the snow in a field near the forest.",
    "caf\xc3\xa9 na\xc3\xafve \xef\xac\x81ne",
    "What is the capital of France? Paris, of course.",
    "   spaces   ",
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen",
};

static cg_embedder *E;
static float WANT[N_TEXTS][CG_EMBED_DIM];
static int32_t WANT_IDS[N_TEXTS][CG_EMBED_MAX_TOKENS];
static int WANT_N[N_TEXTS];

typedef struct {
    int id;
    int mismatches;
    int failures;
} worker;

static void *run(void *arg) {
    worker *w = arg;
    for (int r = 0; r < ROUNDS; r++)
        for (int k = 0; k < N_TEXTS; k++) {
            int t = (k * (w->id + 1) + r) % N_TEXTS; /* a different order per thread */
            float v[CG_EMBED_DIM];
            int32_t ids[CG_EMBED_MAX_TOKENS];
            if (cg_embed(E, TEXTS[t], strlen(TEXTS[t]), v) != 0) {
                w->failures++;
                continue;
            }
            if (memcmp(v, WANT[t], sizeof v) != 0)
                w->mismatches++;
            int n = cg_embed_tokenize(E, TEXTS[t], strlen(TEXTS[t]), ids, CG_EMBED_MAX_TOKENS);
            if (n != WANT_N[t] || memcmp(ids, WANT_IDS[t], (size_t)n * sizeof ids[0]) != 0)
                w->mismatches++;
        }
    return NULL;
}

static void test_threads_identical(void **state) {
    (void)state;
    E = open_model(CG_EMBED_ISA_AUTO);
    assert_non_null(E);
    for (int t = 0; t < N_TEXTS; t++) {
        assert_int_equal(cg_embed(E, TEXTS[t], strlen(TEXTS[t]), WANT[t]), 0);
        WANT_N[t] =
            cg_embed_tokenize(E, TEXTS[t], strlen(TEXTS[t]), WANT_IDS[t], CG_EMBED_MAX_TOKENS);
        assert_true(WANT_N[t] >= 0);
    }
    pthread_t th[N_THREADS];
    worker w[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        w[i] = (worker){.id = i};
        assert_int_equal(pthread_create(&th[i], NULL, run, &w[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
        assert_int_equal(w[i].mismatches, 0);
    }
    cg_embed_close(E);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_threads_identical)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
