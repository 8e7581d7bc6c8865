/* fuzz_usage: libFuzzer target for provider usage objects and metering.
 *
 * Owns: feeding arbitrary JSON to every cg_usage_* reader and pricing each
 * accepted result with cg_cost_compute at built-in prices (gpt-4o,
 * claude-sonnet-4-5, text-embedding-3-small; list and batch rates). The input
 * is used as a usage object; if it has a "usage" (or "message"."usage") member
 * that is used too, and a JSON array is read as an Anthropic stream: element 0
 * is the message_start usage, the rest are message_delta usages applied in
 * order. Invariants (abort() on violation):
 *  - every reader returns 0 or -1; on -1 the output is all zero (deltas leave
 *    the accumulator untouched);
 *  - on success every count is >= 0, OpenAI reasoning <= output, and
 *    cg_usage_input_total is the sum of the input classes;
 *  - every cost axis is >= 0 and total == the sum of the axes;
 *  - the jansson-free usage scanner (provider/usage_scan.c), run on the raw
 *    input and on each "usage":{...} object found in it, either declines
 *    (and leaves its output alone) or gives exactly jansson's result, code
 *    and cg_usage, for each of the three readers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cost/meter.h"
#include "cost/prices.h"
#include "cost/usage.h"
#include "provider/provider.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_usage: invariant failed: %s (line %d)\n", #c, __LINE__);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const cg_price *prices[3];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    /* kept for the process's life (LeakSanitizer: still reachable) */
    static cg_price_table *table;
    table = cg_prices_builtin();
    CHECK(table != NULL);
    prices[0] = cg_prices_find(table, "gpt-4o");
    prices[1] = cg_prices_find(table, "claude-sonnet-4-5");
    prices[2] = cg_prices_find(table, "text-embedding-3-small");
    for (int i = 0; i < 3; i++)
        CHECK(prices[i] != NULL);
    return 0;
}

static int is_zero(const cg_usage *u) {
    static const cg_usage zero;
    return memcmp(u, &zero, sizeof zero) == 0;
}

static void check_cost(const cg_usage *u) {
    for (int i = 0; i < 3; i++) {
        for (int batch = 0; batch < 2; batch++) {
            cg_cost c;
            cg_cost_compute(prices[i], u, batch, &c);
            CHECK(c.input >= 0 && c.output >= 0 && c.embedding >= 0);
            CHECK(c.external_api >= 0 && c.storage_compute >= 0);
            CHECK(c.total == c.input + c.output + c.embedding + c.external_api + c.storage_compute);
        }
    }
}

static void check_ok(const cg_usage *u) {
    CHECK(u->input >= 0 && u->cached_read >= 0 && u->cache_write_5m >= 0);
    CHECK(u->cache_write_1h >= 0 && u->output >= 0 && u->reasoning >= 0);
    CHECK(u->embedding >= 0 && u->web_searches >= 0);
    CHECK((u->have & ~7u) == 0);
    CHECK(cg_usage_input_total(u) ==
          u->input + u->cached_read + u->cache_write_5m + u->cache_write_1h);
    check_cost(u);
}

typedef int (*reader)(const json_t *, cg_usage *);

static void read_one(reader fn, const json_t *j, cg_usage *u) {
    memset(u, 0x5a, sizeof *u);
    int rc = fn(j, u);
    CHECK(rc == 0 || rc == -1);
    if (rc == 0)
        check_ok(u);
    else
        CHECK(is_zero(u));
}

static void all_readers(const json_t *j) {
    cg_usage u, acc;
    read_one(cg_usage_from_openai, j, &u);
    CHECK(u.reasoning <= u.output);
    CHECK((u.have & CG_USAGE_HAVE_EMBED) == 0);
    read_one(cg_usage_from_openai_embedding, j, &u);
    CHECK(u.input == 0 && u.output == 0);
    read_one(cg_usage_from_anthropic, j, &u);
    CHECK(u.reasoning == 0 && u.embedding == 0);

    /* a delta onto an empty accumulator, and onto itself as message_start */
    memset(&acc, 0, sizeof acc);
    int rc = cg_usage_anthropic_delta(&acc, j);
    CHECK(rc == 0 || rc == -1);
    if (rc == 0)
        check_ok(&acc);
    else
        CHECK(is_zero(&acc));
    if (cg_usage_from_anthropic(j, &acc) == 0) {
        cg_usage before = acc;
        rc = cg_usage_anthropic_delta(&acc, j);
        CHECK(rc == 0);
        check_ok(&acc);
        /* applying the same cumulative values again changes nothing */
        CHECK(acc.input == before.input && acc.cached_read == before.cached_read);
        CHECK(acc.output == before.output && acc.web_searches == before.web_searches);
        CHECK(acc.cache_write_5m == before.cache_write_5m);
        CHECK(acc.cache_write_1h == before.cache_write_1h);
    }
}

/* An Anthropic stream: arr[0] starts, every later element is a delta. */
static void stream(const json_t *arr) {
    cg_usage acc;
    size_t i;
    const json_t *e;
    if (json_array_size(arr) == 0 || cg_usage_from_anthropic(json_array_get(arr, 0), &acc) != 0)
        return;
    check_ok(&acc);
    json_array_foreach(arr, i, e) {
        if (i == 0)
            continue;
        cg_usage before = acc;
        int rc = cg_usage_anthropic_delta(&acc, e);
        CHECK(rc == 0 || rc == -1);
        if (rc == -1)
            CHECK(memcmp(&before, &acc, sizeof acc) == 0);
        check_ok(&acc);
    }
}

/* The scanner answers only when it matches jansson exactly. */
static void scan_equal(const char *p, size_t n) {
    static const reader fns[3] = {cg_usage_from_openai, cg_usage_from_openai_embedding,
                                  cg_usage_from_anthropic};
    for (int m = 0; m < 3; m++) {
        cg_usage ref, got, mark;
        memset(&ref, 0x5a, sizeof ref);
        memset(&got, 0x5a, sizeof got);
        memset(&mark, 0x5a, sizeof mark);
        json_t *j = json_loadb(p, n, 0, NULL);
        int ref_rc = j ? fns[m](j, &ref) : -1;
        json_decref(j);
        int rc =
            cg_provider_scan_usage(m == 2 ? CG_API_ANTHROPIC : CG_API_OPENAI, m == 1, p, n, &got);
        if (rc == 0) {
            CHECK(ref_rc == 0);
            CHECK(memcmp(&got, &ref, sizeof got) == 0);
        } else {
            CHECK(rc == 1);
            CHECK(memcmp(&got, &mark, sizeof got) == 0);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *os, *oe;
    scan_equal((const char *)data, size);
    for (int last = 0; last < 2; last++)
        if (cg_provider_usage_object((const char *)data, size, last, &os, &oe) == 0)
            scan_equal(os, (size_t)(oe - os));
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (!j)
        return 0;
    all_readers(j);
    const json_t *u = json_object_get(j, "usage");
    if (u)
        all_readers(u);
    u = json_object_get(json_object_get(j, "message"), "usage");
    if (u)
        all_readers(u);
    if (json_is_array(j))
        stream(j);
    /* NULL is never a usage object */
    cg_usage x;
    CHECK(cg_usage_from_openai(NULL, &x) == -1 && is_zero(&x));
    CHECK(cg_usage_anthropic_delta(&x, NULL) == -1);
    json_decref(j);
    return 0;
}
