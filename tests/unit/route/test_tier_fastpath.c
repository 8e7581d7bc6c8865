/* test_tier_fastpath: the tier stage's shortcuts give the decisions of the
 * slow path.
 *
 * Owns: (1) cg_classify_begin + cg_classify_finish (intent first, the tier
 * and features only when asked for, no second scan) against cg_classify:
 * the same intent, tier and features, bit for bit; (2) the router asking
 * for the classifier's part lazily (cg_route_in.classify) against the same
 * decision with it given up front: the same route, tier, rule, reason and
 * model, over several rule sets, segments and features, and the classifier
 * is asked only when the first rule matching on intent, segment, feature
 * and key has a complexity condition or no rule matches; (3) a splice that
 * stops at the first top-level "model" (cg_model_splice_parsed) against
 * the full walk. Prompts: a built-in Korean and English set and, when
 * CG_SHARED_DIR is set, the RouteLLM GSM8K / MT-bench / MMLU (every 7th)
 * and RouterArena prompts (over 8 KiB ones too: the head and tail path).
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

#include "cost/prices.h"
#include "route/classify.h"
#include "route/eval.h"
#include "route/model_splice.h"
#include "route/router.h"

static const char *const BUILTIN[] = {
    "Say hello in one short sentence please.",
    "Say hello in one short sentence please. #a1b2c3d4e5f6-1234",
    "hi",
    "Hello! How are you today?",
    "안녕하세요, 반가워요",
    "이 문장을 영어로 번역해 주세요: 오늘은 날씨가 좋다",
    "Translate into Korean: the meeting is at noon.",
    "Summarize the following article in three bullet points: ...",
    "What is the capital of France?",
    "Who is the author of Hamlet? tl;dr please",
    "Write a function in Python that reverses a linked list.",
    "```c\nint main(void) { return 0; }\n```\nWhy does this segfault?",
    "Solve the equation 3x + 5 = 20 and calculate x^2.",
    "How many apples are left if I have 12 and eat 3 + 4?",
    "Prove that the square root of 2 is irrational. Think carefully, step by step.",
    "Design a distributed rate limiter; compare token bucket and leaky bucket trade-offs.",
    "Analyze the pros and cons of microservices vs monoliths in depth.",
    "Write a comprehensive essay on the causes of World War I in detail.",
    "First, list the steps. Then, explain each. Finally, summarize.\n1. a\n2. b\n3. c",
    "A. red\nB. blue\nC. green\nD. yellow\nWhich color is the sky?",
    "시스템 아키텍처를 설계해 주세요. 먼저 요구사항을 분석해",
    "이 함수의 코드를 디버그 해줘",
    "확률 문제를 풀어: 주사위 두 개의 합이 7일 확률은?",
    "thanks, that was helpful! hello again",
    "hello, can you translate and summarize this report?",
    "hey hey hey translate",
    "\xff\xfe invalid utf-8 \xc3 hello",
    "",
    "   ",
    "Explain why the sky is blue?",
    "regex to match an email address, implement it in javascript",
    "Compute the integral of x^2 from 0 to 1 and derive the result rigorously.",
};

static cg_classifier *C;
static cg_eval_set SETS[4];
static size_t N_SETS;

static int setup(void **state) {
    (void)state;
    char err[256];
    C = cg_classifier_new(NULL, err, sizeof err);
    if (!C)
        return -1;
    const char *dir = getenv("CG_SHARED_DIR");
    char data[1024], prices[1200];
    if (!dir)
        return 0;
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(prices, sizeof prices, "%s/prices/litellm_model_prices_and_context_window.json", data);
    if (access(prices, R_OK) != 0)
        return 0;
    cg_price_table *b = cg_prices_builtin(), *l = cg_prices_new();
    if (cg_prices_load_litellm(l, prices, 1, err, sizeof err) <= 0)
        return -1;
    static const char *const names[] = {"gsm8k", "mt-bench", "routerarena", "mmlu"};
    for (size_t i = 0; i < 4; i++) {
        cg_eval_load_opts o = {data, b, l, 0, 0};
        if (cg_eval_load(names[i], &o, &SETS[N_SETS], err, sizeof err) != 0)
            return -1;
        N_SETS++;
    }
    cg_prices_free(b);
    cg_prices_free(l);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    for (size_t i = 0; i < N_SETS; i++)
        cg_eval_set_free(&SETS[i]);
    cg_classifier_free(C);
    return 0;
}

/* Calls fn on every prompt of the corpus (MMLU: every 7th). */
static void each_prompt(void (*fn)(const char *p, size_t n, size_t ix)) {
    size_t ix = 0;
    for (size_t i = 0; i < sizeof BUILTIN / sizeof BUILTIN[0]; i++)
        fn(BUILTIN[i], strlen(BUILTIN[i]), ix++);
    for (size_t s = 0; s < N_SETS; s++) {
        size_t step = strcmp(SETS[s].name, "mmlu") == 0 ? 7 : 1;
        for (size_t i = 0; i < SETS[s].n; i += step)
            fn(SETS[s].items[i].prompt, SETS[s].items[i].len, ix++);
    }
}

/* A few request shapes around a prompt, chosen by ix. */
static cg_class_input input_for(const char *p, size_t n, size_t ix) {
    static const char *const systems[] = {NULL, "You are terse.", "[intent:math] be exact",
                                          "[intent:Nope!]"};
    static const char *const headers[] = {NULL, NULL, "code", "Bad!", "small_talk", "unknown"};
    static const int64_t max_out[] = {0, 32, 3000, 500};
    const char *sys = systems[ix % 4];
    cg_class_input in = {.user = p,
                         .user_len = n,
                         .system = sys,
                         .system_len = sys ? strlen(sys) : 0,
                         .header_intent = headers[(ix / 4) % 6],
                         .max_output_tokens = max_out[(ix / 3) % 4],
                         .turns = (int)(ix % 11)};
    return in;
}

/* --- (1) the two-step classifier --------------------------------------- */

static size_t n_checked;

static void check_two_step(const char *p, size_t n, size_t ix) {
    cg_class_input in = input_for(p, n, ix);
    cg_class_result full;
    assert_int_equal(cg_classify(C, &in, &full), 0);
    cg_class_state st;
    char intent[CG_INTENT_NAME_MAX];
    assert_int_equal(cg_classify_begin(C, &in, &st, intent), 0);
    if (memcmp(intent, full.intent, sizeof intent) != 0)
        fail_msg("prompt %zu: intent '%s' vs '%s'", ix, intent, full.intent);
    int tier = -7;
    float feat[CG_CLASS_NFEAT];
    assert_int_equal(cg_classify_finish(C, &in, &st, &tier, ix % 2 ? feat : NULL), 0);
    if (tier != full.tier)
        fail_msg("prompt %zu: tier %d vs %d", ix, tier, full.tier);
    if (ix % 2 && memcmp(feat, full.feat, sizeof feat) != 0)
        fail_msg("prompt %zu: features differ", ix);
    n_checked++;
}

static void test_two_step_equals_classify(void **s) {
    (void)s;
    n_checked = 0;
    each_prompt(check_two_step);
    print_message("%zu prompts checked (%zu data sets)\n", n_checked, N_SETS);
    assert_true(n_checked >= sizeof BUILTIN / sizeof BUILTIN[0]);
    if (N_SETS)
        assert_true(n_checked > 4000);
    cg_class_state st;
    char intent[CG_INTENT_NAME_MAX];
    int tier;
    cg_class_input in = {.user = "x", .user_len = 1};
    assert_int_equal(cg_classify_begin(NULL, &in, &st, intent), -1);
    assert_int_equal(cg_classify_begin(C, NULL, &st, intent), -1);
    assert_int_equal(cg_classify_finish(C, &in, NULL, &tier, NULL), -1);
}

/* --- (2) the lazy router ------------------------------------------------ */

static char *VIRT[] = {"costgate/auto"};
static char *ROUTABLE[] = {"bench"};

static cg_tiering_cfg tiers(cg_tier_rule *rules, size_t n_rules) {
    cg_tiering_cfg t;
    memset(&t, 0, sizeof t);
    t.enabled = 1;
    t.n_tiers = 4;
    const char *names[] = {"small", "medium", "large", "reasoning"};
    const char *oa[] = {"gpt-4o-mini", "gpt-4o", "gpt-4.1", "o3"};
    for (int i = 0; i < 4; i++) {
        snprintf(t.tiers[i].name, sizeof t.tiers[i].name, "%s", names[i]);
        snprintf(t.tiers[i].model[CG_API_OPENAI], sizeof t.tiers[i].model[0], "%s", oa[i]);
    }
    t.default_tier = 1;
    t.virtual_models = VIRT;
    t.n_virtual = 1;
    t.routable_keys = ROUTABLE;
    t.n_routable = 1;
    t.learned_threshold = 0.5;
    t.rules = rules;
    t.n_rules = n_rules;
    return t;
}

static cg_tier_rule rule(const char *intent, const char *segment, const char *feature,
                         int complexity, int tier) {
    cg_tier_rule r;
    memset(&r, 0, sizeof r);
    snprintf(r.intent, sizeof r.intent, "%s", intent);
    snprintf(r.segment, sizeof r.segment, "%s", segment);
    snprintf(r.feature, sizeof r.feature, "%s", feature);
    r.complexity = complexity;
    r.tier = tier;
    return r;
}

static cg_tiering_cfg CFGS[4];
static int LEARNED[4]; /* the config stands in for one with a learned router */
static cg_tier_rule R_BENCH[1], R_CODE[3], R_MIXED[4];

static void configs(void) {
    R_BENCH[0] = rule("small_talk", "", "", -1, 0); /* bench/profile.sh's */
    R_CODE[0] = rule("code", "", "", 2, 2);
    R_CODE[1] = rule("code", "", "", -1, 1);
    R_CODE[2] = rule("", "", "", 0, 0);
    R_MIXED[0] = rule("", "rnd", "", -1, 2);
    R_MIXED[1] = rule("translate", "", "", -1, 0);
    R_MIXED[2] = rule("", "", "search", 0, 0);
    R_MIXED[3] = rule("small_talk", "", "chat", -1, 0);
    CFGS[0] = tiers(R_BENCH, 1);
    CFGS[1] = tiers(R_CODE, 3);
    CFGS[2] = tiers(R_MIXED, 4);
    CFGS[3] = tiers(R_BENCH, 1);
    LEARNED[3] = 1;
}

/* P(strong) of a stand-in learned router: any fixed function of the
 * features will do. */
static double fake_p(const float *feat) {
    return 0.3 * feat[CG_FEAT_SCORE] + 0.1 * feat[CG_FEAT_LOG_WORDS] + 0.05 * feat[CG_FEAT_MATH];
}

static void eager_part(const cg_class_result *res, int learned, cg_route_in *in) {
    in->suggested_tier = cg_tier_name(res->tier);
    in->complexity = res->tier <= CG_TIER_SMALL ? 0 : res->tier == CG_TIER_MEDIUM ? 1 : 2;
    in->p_strong = learned ? fake_p(res->feat) : -1;
}

typedef struct lazy {
    const cg_class_input *in;
    cg_class_state st;
    int learned;
    int calls;
} lazy;

static void lazy_part(void *arg, int *complexity, const char **suggested, double *p_strong) {
    lazy *z = arg;
    int tier;
    float feat[CG_CLASS_NFEAT];
    z->calls++;
    assert_int_equal(cg_classify_finish(C, z->in, &z->st, &tier, feat), 0);
    *suggested = cg_tier_name(tier);
    *complexity = tier <= CG_TIER_SMALL ? 0 : tier == CG_TIER_MEDIUM ? 1 : 2;
    *p_strong = z->learned ? fake_p(feat) : -1;
}

/* 1 when the first rule matching on everything but complexity lacks a
 * complexity condition: the decision needs no classifier part. */
static int decided_by_rule(const cg_tiering_cfg *t, const cg_route_in *in) {
    for (size_t i = 0; i < t->n_rules; i++) {
        const cg_tier_rule *r = &t->rules[i];
        if ((r->intent[0] && strcmp(r->intent, in->intent) != 0) ||
            (r->segment[0] && strcmp(r->segment, in->segment) != 0) ||
            (r->feature[0] && strcmp(r->feature, in->feature) != 0))
            continue;
        return r->complexity < 0;
    }
    return 0;
}

static size_t n_lazy_calls, n_decisions;

static void check_router(const char *p, size_t n, size_t ix) {
    static const char *const segments[] = {"", "rnd", ""};
    static const char *const features[] = {"", "search", "chat", ""};
    cg_class_input cin = input_for(p, n, ix);
    cg_class_result res;
    assert_int_equal(cg_classify(C, &cin, &res), 0);
    for (size_t c = 0; c < 4; c++) {
        const cg_tiering_cfg *t = &CFGS[c];
        cg_route_in base = {.api = CG_API_OPENAI,
                            .model = ix % 5 ? "costgate/auto" : "gpt-4o",
                            .key_name = ix % 3 ? "bench" : "other",
                            .segment = segments[(ix + c) % 3],
                            .feature = features[(ix / 2 + c) % 4],
                            .complexity = -1,
                            .p_strong = -1};
        /* as the stage: the header intent when the client sent one */
        base.intent = cin.header_intent ? cin.header_intent : res.intent;
        cg_route_in eager = base;
        eager_part(&res, LEARNED[c], &eager);
        cg_route_out a, b;
        int rc_a = cg_router_decide(t, NULL, &eager, &a);

        lazy z = {.in = &cin, .learned = LEARNED[c]};
        char intent[CG_INTENT_NAME_MAX];
        assert_int_equal(cg_classify_begin(C, &cin, &z.st, intent), 0);
        cg_route_in lz = base;
        lz.intent = cin.header_intent ? cin.header_intent : intent;
        lz.classify = lazy_part;
        lz.classify_arg = &z;
        int rc_b = cg_router_decide(t, NULL, &lz, &b);

        if (rc_a != rc_b || a.routed != b.routed || a.tier != b.tier || a.rule != b.rule ||
            a.explored != b.explored || strcmp(a.why, b.why) != 0 || strcmp(a.model, b.model) != 0)
            fail_msg("prompt %zu config %zu: eager %d/%d/%s/%s, lazy %d/%d/%s/%s", ix, c, a.tier,
                     a.rule, a.why, a.model, b.tier, b.rule, b.why, b.model);
        assert_true(z.calls <= 1);
        int routed =
            strcmp(base.model, "costgate/auto") == 0 || strcmp(base.key_name, "bench") == 0;
        if (!routed || decided_by_rule(t, &lz))
            assert_int_equal(z.calls, 0);
        else
            assert_int_equal(z.calls, 1);
        n_lazy_calls += (size_t)z.calls;
        n_decisions++;
    }
}

static void test_lazy_router_equals_eager(void **s) {
    (void)s;
    configs();
    n_lazy_calls = n_decisions = 0;
    each_prompt(check_router);
    /* both kinds were seen: decisions by a rule alone and with the classifier */
    print_message("%zu decisions, %zu asked the classifier\n", n_decisions, n_lazy_calls);
    assert_true(n_lazy_calls > 0 && n_lazy_calls < n_decisions);
}

/* --- (3) the splice that stops at the first "model" ------------------------ */

static void check_splice(const char *body, const char *model) {
    cg_buf a, b;
    cg_buf_init(&a, 1 << 20);
    cg_buf_init(&b, 1 << 20);
    cg_buf_append(&a, body, strlen(body));
    cg_buf_append(&b, body, strlen(body));
    int ra = cg_model_splice(&a, model, strlen(model));
    int rb = cg_model_splice_parsed(&b, model, strlen(model));
    assert_int_equal(ra, rb);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    cg_buf_free(&a);
    cg_buf_free(&b);
}

static void test_splice_parsed_equals_full(void **s) {
    (void)s;
    static const char *const bodies[] = {
        "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"a \\\"model\\\": x\",\"model\":\"in\"}],"
        "\"model\":\"gpt-4o\",\"max_tokens\":32}",
        " { \"stream\" : true , \"model\" : \"m\\\"x\" , \"tools\" : [ { \"model\" : 1 } ] } ",
        "{\"metadata\":{\"model\":\"no\"},\"model\":\"costgate/auto\"}",
        "{\"model\":1,\"messages\":[]}",
        "{\"messages\":[]}",
        "{\"mod\\u0065l\":\"x\",\"model\":\"y\"}",
        "{}",
    };
    static const char *const models[] = {"gpt-4o", "a\"b\\c\n", "claude-haiku-4-5", ""};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        for (size_t m = 0; m < sizeof models / sizeof models[0]; m++)
            check_splice(bodies[i], models[m]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_step_equals_classify),
        cmocka_unit_test(test_lazy_router_equals_eager),
        cmocka_unit_test(test_splice_parsed_equals_full),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
