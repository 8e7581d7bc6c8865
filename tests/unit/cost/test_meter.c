/* test_meter: unit tests of src/cost/meter.c.
 *
 * Owns: the golden cost cases, exact to the nano-dollar with the expected
 * integers worked out by hand in the comments (usage JSON -> cg_usage ->
 * built-in price -> cg_cost), the one-rounding-per-axis rule, batch pricing,
 * the external (web search) and embedding axes, and saturation.
 *
 * Units: a price is nano-USD per 1M tokens, so tokens x price is femto-USD
 * (1e-15); / 10^6 gives nano-USD. E.g. $2.50/1M = 2,500,000,000.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cost/meter.h"

static cg_price_table *table;

static int setup(void **state) {
    (void)state;
    table = cg_prices_builtin();
    return table ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    cg_prices_free(table);
    return 0;
}

static const cg_price *price(const char *model) {
    const cg_price *p = cg_prices_find(table, model);
    if (!p)
        fail_msg("no price for %s", model);
    return p;
}

static cg_usage usage(int (*fn)(const json_t *, cg_usage *), const char *text) {
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        fail_msg("bad test JSON: %s", e.text);
    cg_usage u;
    assert_int_equal(fn(j, &u), 0);
    json_decref(j);
    return u;
}

static void expect(const cg_cost *c, int64_t in, int64_t out, int64_t emb, int64_t ext,
                   int64_t total) {
    if (c->input != in || c->output != out || c->embedding != emb || c->external_api != ext ||
        c->storage_compute != 0 || c->total != total)
        fail_msg("cost in %lld out %lld emb %lld ext %lld sc %lld total %lld; want %lld %lld "
                 "%lld %lld 0 %lld",
                 (long long)c->input, (long long)c->output, (long long)c->embedding,
                 (long long)c->external_api, (long long)c->storage_compute, (long long)c->total,
                 (long long)in, (long long)out, (long long)emb, (long long)ext, (long long)total);
}

/* A bare price for the rounding tests: everything UNSET but what is set. */
static cg_price bare(int64_t in, int64_t cached, int64_t out) {
    cg_price p;
    memset(&p, 0, sizeof p);
    snprintf(p.model, sizeof p.model, "bare");
    p.kind = CG_MODEL_CHAT;
    p.input = in;
    p.cached_input = cached;
    p.output = out;
    p.cache_write_5m = p.cache_write_1h = CG_PRICE_UNSET;
    p.batch_input = p.batch_output = p.web_search_per_1k = CG_PRICE_UNSET;
    return p;
}

/* (a) OpenAI gpt-4o, non-stream, with a prompt-cache hit. */
static void test_golden_openai_gpt4o(void **state) {
    (void)state;
    cg_usage u = usage(cg_usage_from_openai, "{\"prompt_tokens\":2006,\"completion_tokens\":300,"
                                             "\"prompt_tokens_details\":{\"cached_tokens\":1920}}");
    cg_cost c;
    cg_cost_compute(price("gpt-4o-2024-08-06"), &u, 0, &c);
    /* input  = (2006 - 1920) = 86 x 2,500,000,000 =   215,000,000,000 fUSD
     *        + 1920 x 1,250,000,000                 = 2,400,000,000,000 fUSD
     *        = 2,615,000,000,000 fUSD = 2,615,000 nUSD
     * output = 300 x 10,000,000,000 = 3,000,000,000,000 fUSD = 3,000,000 nUSD
     * total  = 5,615,000 nUSD ($0.005615) */
    expect(&c, 2615000, 3000000, 0, 0, 5615000);
}

/* (b) o-series: reasoning_tokens are inside completion_tokens. */
static void test_golden_openai_reasoning(void **state) {
    (void)state;
    cg_usage u =
        usage(cg_usage_from_openai, "{\"prompt_tokens\":1500,\"completion_tokens\":2000,"
                                    "\"prompt_tokens_details\":{\"cached_tokens\":1024},"
                                    "\"completion_tokens_details\":{\"reasoning_tokens\":1500}}");
    cg_cost c;
    cg_cost_compute(price("o4-mini"), &u, 0, &c);
    /* input  = 476 x 1,100,000,000 = 523,600,000,000 fUSD
     *        + 1024 x 275,000,000  = 281,600,000,000 fUSD  -> 805,200 nUSD
     * output = 2000 x 4,400,000,000 = 8,800,000,000,000 fUSD -> 8,800,000 nUSD
     *          (reasoning 1500 is part of the 2000, not added: that would be
     *          3500 x 4.40/1M = 15,400,000)
     * total  = 9,605,200 nUSD */
    expect(&c, 805200, 8800000, 0, 0, 9605200);

    u = usage(cg_usage_from_openai, "{\"prompt_tokens\":1000,\"completion_tokens\":5000,"
                                    "\"completion_tokens_details\":{\"reasoning_tokens\":4000}}");
    cg_cost_compute(price("o3"), &u, 0, &c);
    /* 1000 x 2,000,000,000 = 2,000,000 nUSD; 5000 x 8,000,000,000 = 40,000,000 nUSD */
    expect(&c, 2000000, 40000000, 0, 0, 42000000);
}

/* (c) Anthropic with cache reads and a 5m/1h cache-write split. */
static void test_golden_anthropic_cache(void **state) {
    (void)state;
    cg_usage u = usage(cg_usage_from_anthropic,
                       "{\"input_tokens\":50,\"cache_read_input_tokens\":100000,"
                       "\"cache_creation_input_tokens\":2048,\"cache_creation\":"
                       "{\"ephemeral_5m_input_tokens\":1024,\"ephemeral_1h_input_tokens\":1024},"
                       "\"output_tokens\":500}");
    cg_cost c;
    cg_cost_compute(price("claude-sonnet-4-20250514"), &u, 0, &c);
    /* input  = 50     x 3,000,000,000 =        150,000,000,000 fUSD
     *        + 100000 x   300,000,000 =     30,000,000,000,000 fUSD
     *        + 1024   x 3,750,000,000 =      3,840,000,000,000 fUSD (5 min)
     *        + 1024   x 6,000,000,000 =      6,144,000,000,000 fUSD (1 h)
     *        = 40,134,000,000,000 fUSD = 40,134,000 nUSD
     *          (the 2048 total is not charged again: +7,680,000 if it were)
     * output = 500 x 15,000,000,000 = 7,500,000 nUSD
     * total  = 47,634,000 nUSD */
    expect(&c, 40134000, 7500000, 0, 0, 47634000);
}

/* (d) Anthropic stream: message_start, message_delta, final cost. */
static void test_golden_anthropic_stream(void **state) {
    (void)state;
    cg_usage u =
        usage(cg_usage_from_anthropic, "{\"input_tokens\":25,\"cache_read_input_tokens\":0,"
                                       "\"cache_creation_input_tokens\":0,\"output_tokens\":1}");
    json_t *d = json_loads("{\"output_tokens\":15}", 0, NULL);
    assert_int_equal(cg_usage_anthropic_delta(&u, d), 0);
    json_decref(d);
    cg_cost c;
    cg_cost_compute(price("claude-haiku-4-5-20251001"), &u, 0, &c);
    /* input  = 25 x 1,000,000,000 = 25,000,000,000 fUSD = 25,000 nUSD
     * output = 15 x 5,000,000,000 = 75,000,000,000 fUSD = 75,000 nUSD
     *          (cumulative 15 replaces the 1 of message_start: not 16)
     * total  = 100,000 nUSD */
    expect(&c, 25000, 75000, 0, 0, 100000);
}

/* (e) Embeddings go on the embedding axis. */
static void test_golden_embedding(void **state) {
    (void)state;
    cg_usage u = usage(cg_usage_from_openai_embedding, "{\"prompt_tokens\":1000,"
                                                       "\"total_tokens\":1000}");
    cg_cost c;
    cg_cost_compute(price("text-embedding-3-small"), &u, 0, &c);
    /* 1000 x 20,000,000 = 20,000,000,000 fUSD = 20,000 nUSD */
    expect(&c, 0, 0, 20000, 0, 20000);

    u = usage(cg_usage_from_openai_embedding, "{\"prompt_tokens\":12345,\"total_tokens\":12345}");
    cg_cost_compute(price("text-embedding-3-large"), &u, 0, &c);
    /* 12345 x 130,000,000 = 1,604,850,000,000 fUSD = 1,604,850 nUSD */
    expect(&c, 0, 0, 1604850, 0, 1604850);
    cg_cost_compute(price("text-embedding-3-large"), &u, 1, &c);
    /* batch: 12345 x 65,000,000 = 802,425,000,000 fUSD = 802,425 nUSD */
    expect(&c, 0, 0, 802425, 0, 802425);

    /* An embedding model given chat-style usage still bills the embedding axis. */
    u = usage(cg_usage_from_openai, "{\"prompt_tokens\":1000}");
    cg_cost_compute(price("text-embedding-3-small"), &u, 0, &c);
    expect(&c, 0, 0, 20000, 0, 20000);
    /* Embedding tokens on a chat model: embedding axis at the input price.
     * 10 x 2,500,000,000 = 25,000 nUSD */
    memset(&u, 0, sizeof u);
    u.embedding = 10;
    cg_cost_compute(price("gpt-4o"), &u, 0, &c);
    expect(&c, 0, 0, 25000, 0, 25000);
}

/* (f) Anthropic server-side web search on the external-API axis. */
static void test_golden_web_search(void **state) {
    (void)state;
    cg_usage u = usage(cg_usage_from_anthropic, "{\"input_tokens\":100,\"output_tokens\":200,"
                                                "\"server_tool_use\":{\"web_search_requests\":3}}");
    cg_cost c;
    cg_cost_compute(price("claude-sonnet-4-5"), &u, 0, &c);
    /* input    = 100 x 3,000,000,000  =    300,000 nUSD
     * output   = 200 x 15,000,000,000 =  3,000,000 nUSD
     * external = 3 x $10 / 1000 = 3 x 10,000,000,000 / 1000 = 30,000,000 nUSD
     * total    = 33,300,000 nUSD */
    expect(&c, 300000, 3000000, 0, 30000000, 33300000);
    /* A model without a web-search price: the external axis stays 0. */
    cg_cost_compute(price("claude-3-haiku"), &u, 0, &c);
    /* 100 x 250,000,000 = 25,000; 200 x 1,250,000,000 = 250,000 */
    expect(&c, 25000, 250000, 0, 0, 275000);
}

/* (g) Batch pricing: uncached input and output at the batch rates. */
static void test_golden_batch(void **state) {
    (void)state;
    cg_usage u = usage(cg_usage_from_openai, "{\"prompt_tokens\":2006,\"completion_tokens\":300,"
                                             "\"prompt_tokens_details\":{\"cached_tokens\":1920}}");
    cg_cost c;
    cg_cost_compute(price("gpt-4o"), &u, 1, &c);
    /* input  = 86 x 1,250,000,000 (batch)   =   107,500,000,000 fUSD
     *        + 1920 x 1,250,000,000 (cache) = 2,400,000,000,000 fUSD
     *        = 2,507,500 nUSD
     * output = 300 x 5,000,000,000 (batch) = 1,500,000 nUSD
     * total  = 4,007,500 nUSD */
    expect(&c, 2507500, 1500000, 0, 0, 4007500);

    u = usage(cg_usage_from_anthropic,
              "{\"input_tokens\":50,\"cache_read_input_tokens\":100000,"
              "\"cache_creation\":{\"ephemeral_5m_input_tokens\":1024,"
              "\"ephemeral_1h_input_tokens\":1024},\"output_tokens\":500}");
    cg_cost_compute(price("claude-sonnet-4-5"), &u, 1, &c);
    /* input  = 50 x 1,500,000,000 = 75,000 + 30,000,000 + 3,840,000 + 6,144,000
     *        = 40,059,000 nUSD (cache rates unchanged)
     * output = 500 x 7,500,000,000 = 3,750,000 nUSD
     * total  = 43,809,000 nUSD */
    expect(&c, 40059000, 3750000, 0, 0, 43809000);

    /* UNSET batch prices default to half: 1000 x 1,500,000,000 = 1,500,000;
     * 100 x 7,500,000,000 = 750,000. */
    cg_price p = bare(3000000000, CG_PRICE_UNSET, 15000000000);
    memset(&u, 0, sizeof u);
    u.input = 1000;
    u.output = 100;
    cg_cost_compute(&p, &u, 1, &c);
    expect(&c, 1500000, 750000, 0, 0, 2250000);
}

/* (h) Rounding: femto products are summed per axis, rounded once. */
static void test_rounding(void **state) {
    (void)state;
    cg_usage u;
    cg_cost c;
    /* x.5 nano rounds away from zero: 1 x 1,500,000 fUSD = 1.5 nUSD -> 2 */
    cg_price p = bare(1500000, CG_PRICE_UNSET, 2500000);
    memset(&u, 0, sizeof u);
    u.input = 1;
    u.output = 1; /* 1 x 2,500,000 = 2.5 nUSD -> 3 */
    cg_cost_compute(&p, &u, 0, &c);
    expect(&c, 2, 3, 0, 0, 5);
    /* 1,499,999 fUSD = 1.499999 nUSD -> 1 */
    p = bare(1499999, CG_PRICE_UNSET, 0);
    cg_cost_compute(&p, &u, 0, &c);
    expect(&c, 1, 0, 0, 0, 1);
    /* Three tokens at 0.5 nano each sum to exactly 1.5 -> 2. */
    p = bare(500000, CG_PRICE_UNSET, 0);
    memset(&u, 0, sizeof u);
    u.input = 3;
    cg_cost_compute(&p, &u, 0, &c);
    expect(&c, 2, 0, 0, 0, 2);

    /* Sum-then-round differs from per-class rounding (upwards):
     * uncached 1 x 1,250,000 = 1.25 nUSD, cache read 1 x 250,000 = 0.25 nUSD;
     * sum 1,500,000 fUSD = 1.5 -> 2; rounding each class would give 1 + 0 = 1. */
    p = bare(1250000, 250000, 0);
    memset(&u, 0, sizeof u);
    u.input = 1;
    u.cached_read = 1;
    cg_cost_compute(&p, &u, 0, &c);
    expect(&c, 2, 0, 0, 0, 2);
    /* ... and downwards: 0.6 + 0.6 = 1.2 -> 1, per class 1 + 1 = 2. */
    p = bare(600000, 600000, 0);
    cg_cost_compute(&p, &u, 0, &c);
    expect(&c, 1, 0, 0, 0, 1);
    /* All four input classes on one axis: uncached 1 x 400,000 = 0.4,
     * 5 min 3 x 300,000 = 0.9, 1 h 1 x 100,000 = 0.1 nUSD: 1.4 -> 1. */
    p = bare(400000, CG_PRICE_UNSET, 0);
    p.cache_write_5m = 300000;
    p.cache_write_1h = 100000;
    memset(&u, 0, sizeof u);
    u.input = 1;
    u.cache_write_5m = 3;
    u.cache_write_1h = 1;
    cg_cost_compute(&p, &u, 0, &c);
    expect(&c, 1, 0, 0, 0, 1);
    /* Axes are rounded separately and the total is their sum:
     * input 1.5 -> 2, output 1.5 -> 2, total 4 (not round(3.0) = 3). */
    p = bare(1500000, CG_PRICE_UNSET, 1500000);
    memset(&u, 0, sizeof u);
    u.input = 1;
    u.output = 1;
    cg_cost_compute(&p, &u, 0, &c);
    expect(&c, 2, 2, 0, 0, 4);
    /* External axis, rounded once: $0.0000015 per 1000 searches = 1,500
     * nUSD / 1000 = 1.5 nUSD per search; 3 searches = 4.5 -> 5. */
    p = bare(0, CG_PRICE_UNSET, 0);
    p.web_search_per_1k = 1500;
    memset(&u, 0, sizeof u);
    u.web_searches = 3;
    cg_cost_compute(&p, &u, 0, &c);
    expect(&c, 0, 0, 0, 5, 5);
    u.web_searches = 1;
    cg_cost_compute(&p, &u, 0, &c);
    expect(&c, 0, 0, 0, 2, 2);
}

static void test_unpriced_and_limits(void **state) {
    (void)state;
    cg_usage u;
    cg_cost c;
    memset(&u, 0, sizeof u);
    u.input = 1000;
    u.output = 1000;
    /* UNSET output price contributes nothing (callers refuse unpriced models). */
    /* input 1000 x 1,000,000,000 = 10^12 fUSD = 1,000,000 nUSD ($1/1M). */
    cg_price p = bare(1000000000, CG_PRICE_UNSET, CG_PRICE_UNSET);
    cg_cost_compute(&p, &u, 0, &c);
    expect(&c, 1000000, 0, 0, 0, 1000000);
    cg_cost_compute(&p, &u, 1, &c);
    expect(&c, 500000, 0, 0, 0, 500000);
    /* Negative token counts (hand-built usage) contribute nothing. */
    u.input = -5;
    cg_cost_compute(&p, &u, 0, &c);
    expect(&c, 0, 0, 0, 0, 0);
    /* Saturation instead of overflow. */
    memset(&u, 0, sizeof u);
    u.input = u.cached_read = u.cache_write_5m = u.cache_write_1h = INT64_MAX;
    u.output = u.embedding = u.web_searches = INT64_MAX;
    p = bare(INT64_MAX, INT64_MAX, INT64_MAX);
    p.cache_write_5m = p.cache_write_1h = p.web_search_per_1k = INT64_MAX;
    cg_cost_compute(&p, &u, 0, &c);
    expect(&c, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX);
    /* NULL arguments give a zero cost. */
    memset(&c, 0x5a, sizeof c);
    cg_cost_compute(NULL, &u, 0, &c);
    expect(&c, 0, 0, 0, 0, 0);
    memset(&c, 0x5a, sizeof c);
    cg_cost_compute(&p, NULL, 0, &c);
    expect(&c, 0, 0, 0, 0, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_openai_gpt4o),
        cmocka_unit_test(test_golden_openai_reasoning),
        cmocka_unit_test(test_golden_anthropic_cache),
        cmocka_unit_test(test_golden_anthropic_stream),
        cmocka_unit_test(test_golden_embedding),
        cmocka_unit_test(test_golden_web_search),
        cmocka_unit_test(test_golden_batch),
        cmocka_unit_test(test_rounding),
        cmocka_unit_test(test_unpriced_and_limits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
