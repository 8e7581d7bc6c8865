/* fuzz_jparse: differential libFuzzer target for src/core/jparse.c.
 *
 * Owns: the contract of the fast JSON reader against jansson. For every
 * input the fast path accepts, json_loadb with the same flags
 * (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY) must accept it too and give
 * the same tree, keys in the same order (compared as compact dumps, reals
 * at full precision). When the fast path gives up, cg_json_load must return
 * exactly what jansson returns (both NULL with the same error text, or
 * equal trees). abort() on any difference.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jparse.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_jparse: invariant failed: %s (line %d)\n", #c, __LINE__);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void same(json_t *a, json_t *b) {
    CHECK(a && b);
    CHECK(json_equal(a, b));
    size_t f = JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17);
    char *da = json_dumps(a, f), *db = json_dumps(b, f);
    CHECK(da && db && strcmp(da, db) == 0);
    free(da);
    free(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *in = (const char *)data;
    json_error_t je, je2;
    json_t *ref = json_loadb(in, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    json_t *fast = cg_json_load_fast(in, size);
    if (fast)
        same(fast, ref);
    json_t *full = cg_json_load(in, size, &je2);
    if (ref)
        same(full, ref);
    else
        CHECK(!full && strcmp(je.text, je2.text) == 0 && je.line == je2.line &&
              je.column == je2.column);
    json_decref(ref);
    json_decref(fast);
    json_decref(full);
    return 0;
}
