/* fuzz_model_splice: libFuzzer target for the model rewrite in the body
 * bytes (src/route/model_splice.c).
 *
 * Owns: feeding arbitrary bytes to cg_model_span and cg_model_splice (the
 * new name picked by the first byte from names that need escaping or not).
 * Invariants (abort() on violation):
 *  - a span, when found, lies inside the input and is a quoted string;
 *  - a refused splice leaves the body byte for byte as it was;
 *  - an accepted splice keeps the bytes before and after the span, and when
 *    jansson reads the input (the gateway splices only bodies its parse
 *    stage read; invalid JSON may be spliced here), the result parses to
 *    the input's tree with "model" set to the new name;
 *  - an input that jansson reads as an object whose "model" is a string,
 *    with no backslash anywhere (so no escaped key), is never refused.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/model_splice.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_model_splice: invariant failed: %s (line %d)\n", #c, __LINE__);  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const names[] = {"gpt-4o", "m", "a\"b\\c\n\x01", "모델-é", ""};
    if (size == 0)
        return 0;
    const char *name = names[data[0] % (sizeof names / sizeof names[0])];
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    size_t s = 0, e = 0;
    if (cg_model_span(p, n, &s, &e) == 0)
        CHECK(s < e && e <= n && e - s >= 2 && p[s] == '"' && p[e - 1] == '"');
    cg_buf b;
    cg_buf_init(&b, n + 4096);
    if (cg_buf_append(&b, p, n) != 0) {
        cg_buf_free(&b);
        return 0;
    }
    json_t *tree = json_loadb(p, n, JSON_REJECT_DUPLICATES, NULL);
    int has_model = json_is_object(tree) && json_is_string(json_object_get(tree, "model"));
    int rc = cg_model_splice(&b, name, strlen(name));
    if (rc != 0) {
        CHECK(b.len == n && memcmp(b.data, p, n) == 0);
        CHECK(!(has_model && !memchr(p, '\\', n)));
    } else {
        CHECK(cg_model_span(p, n, &s, &e) == 0);
        CHECK(memcmp(b.data, p, s) == 0);
        CHECK(b.len >= n - e && memcmp(b.data + b.len - (n - e), p + e, n - e) == 0);
        if (tree) {
            CHECK(has_model);
            json_object_set_new(tree, "model", json_string(name));
            json_t *got = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, NULL);
            CHECK(got && json_equal(got, tree));
            json_decref(got);
        }
    }
    json_decref(tree);
    cg_buf_free(&b);
    return 0;
}
