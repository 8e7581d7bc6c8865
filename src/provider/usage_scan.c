/* usage_scan: provider usage objects read without building a JSON tree.
 *
 * Owns: a strict, bounded scanner for the usage object both APIs send
 * (OpenAI prompt/completion/total tokens and their details objects, the
 * Responses API's input/output names; Anthropic input/output/cache tokens,
 * cache_creation's 5 min / 1 h split and server_tool_use) and the same
 * normalisation rules as cost/usage.c. It accepts only what it fully
 * understands: one object, members whose values are non-negative integers
 * up to SCAN_COUNT_MAX or null for the counts it reads, the known nested
 * objects one level deep, and plain scalars (ASCII strings without escapes,
 * short integers, true/false/null) for any other member. Anything else
 * (escapes, non-ASCII, reals, arrays, unknown nested objects, duplicate
 * known keys, a count that cg_usage_from_* would refuse) makes it decline,
 * and the caller parses with jansson: a result it does give is the one
 * jansson plus cg_usage_from_* would give (tests/unit/provider/
 * test_usage_scan.c and tests/fuzz/fuzz_usage.c check this).
 */
#include <stdint.h>
#include <string.h>

#include "core/find.h"
#include "cost/usage.h"
#include "provider/provider.h"

/* Counts above this are left to jansson and cost/usage.c (their bound is
 * larger; declining is always exact). */
#define SCAN_COUNT_MAX INT64_C(1000000000)
#define SCAN_INT_DIGITS 18 /* other integers: jansson parses these exactly */

enum { C_PROMPT, C_COMPLETION, C_TOTAL, C_INPUT, C_OUTPUT, C_CREAD, C_CCREATE, C_TOP_N };
enum { N_CACHED, N_REASONING, N_E5M, N_E1H, N_WEB, C_NEST_N };
enum { O_PTD, O_ITD, O_CTD, O_OTD, O_CC, O_STU, O_N };
enum { ABSENT = 0, NUL = 1, PRESENT = 2 }; /* a count or object member */

typedef struct fields {
    int64_t top[C_TOP_N];
    unsigned char top_st[C_TOP_N];
    unsigned char obj_st[O_N];
    int64_t nest[O_N][C_NEST_N];
    unsigned char nest_st[O_N][C_NEST_N];
} fields;

typedef struct name {
    const char *s;
    size_t n;
} name;
#define NAME(s)                                                                                    \
    { s, sizeof(s) - 1 }

static const name TOP_COUNTS[C_TOP_N] = {NAME("prompt_tokens"),
                                         NAME("completion_tokens"),
                                         NAME("total_tokens"),
                                         NAME("input_tokens"),
                                         NAME("output_tokens"),
                                         NAME("cache_read_input_tokens"),
                                         NAME("cache_creation_input_tokens")};
static const name TOP_OBJECTS[O_N] = {
    NAME("prompt_tokens_details"), NAME("input_tokens_details"), NAME("completion_tokens_details"),
    NAME("output_tokens_details"), NAME("cache_creation"),       NAME("server_tool_use")};
static const name NEST_COUNTS[C_NEST_N] = {
    NAME("cached_tokens"), NAME("reasoning_tokens"), NAME("ephemeral_5m_input_tokens"),
    NAME("ephemeral_1h_input_tokens"), NAME("web_search_requests")};

static int lookup(const name *t, int n, const char *k, size_t kn) {
    for (int i = 0; i < n; i++)
        if (t[i].n == kn && memcmp(t[i].s, k, kn) == 0)
            return i;
    return -1;
}

typedef struct scan {
    const char *p, *end;
} scan;

static void ws(scan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int lit(scan *s, const char *w, size_t n) {
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

/* A string of printable ASCII without escapes; its text in [*k, *k + *kn). */
static int plain_string(scan *s, const char **k, size_t *kn) {
    if (s->p >= s->end || *s->p != '"')
        return -1;
    const char *b = ++s->p;
    /* the run up to the first quote, backslash, control or high byte */
    s->p += cg_json_plain_len(s->p, (size_t)(s->end - s->p));
    if (s->p >= s->end || *s->p != '"' || memchr(b, 0x7f, (size_t)(s->p - b)))
        return -1;
    *k = b;
    *kn = (size_t)(s->p - b);
    s->p++;
    return 0;
}

/* An integer without sign (unless neg_ok), fraction or exponent, of at most
 * max_digits digits, followed by a delimiter. */
static int integer(scan *s, int neg_ok, int max_digits, int64_t *out) {
    if (neg_ok && s->p < s->end && *s->p == '-')
        s->p++;
    const char *b = s->p;
    int64_t v = 0;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
        if (s->p - b >= max_digits)
            return -1;
        v = v * 10 + (*s->p - '0');
        s->p++;
    }
    size_t nd = (size_t)(s->p - b);
    if (nd == 0 || (nd > 1 && *b == '0'))
        return -1;
    if (s->p < s->end && *s->p != ',' && *s->p != '}' && *s->p != ' ' && *s->p != '\t' &&
        *s->p != '\n' && *s->p != '\r')
        return -1;
    *out = v;
    return 0;
}

/* A count the readers take: a small non-negative integer, or null. */
static int count(scan *s, int64_t *v, unsigned char *st) {
    if (*st != ABSENT)
        return -1; /* a duplicate key: jansson keeps the last; leave it to jansson */
    if (s->p < s->end && *s->p == 'n') {
        *st = NUL;
        return lit(s, "null", 4);
    }
    if (integer(s, 0, 10, v) != 0 || *v > SCAN_COUNT_MAX)
        return -1;
    *st = PRESENT;
    return 0;
}

/* Any other member's value: a plain scalar. */
static int skip_scalar(scan *s) {
    if (s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '"': {
        const char *k;
        size_t kn;
        return plain_string(s, &k, &kn);
    }
    case 't':
        return lit(s, "true", 4);
    case 'f':
        return lit(s, "false", 5);
    case 'n':
        return lit(s, "null", 4);
    default: {
        int64_t v;
        return integer(s, 1, SCAN_INT_DIGITS, &v);
    }
    }
}

/* One object's members; which = -1 for the usage object, else O_*. */
static int members(scan *s, fields *f, int which) {
    ws(s);
    if (lit(s, "{", 1) != 0)
        return -1;
    ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 0;
    }
    for (;;) {
        const char *k;
        size_t kn;
        if (plain_string(s, &k, &kn) != 0)
            return -1;
        ws(s);
        if (lit(s, ":", 1) != 0)
            return -1;
        ws(s);
        int rc;
        if (which < 0) {
            int i = lookup(TOP_COUNTS, C_TOP_N, k, kn), o;
            if (i >= 0) {
                rc = count(s, &f->top[i], &f->top_st[i]);
            } else if ((o = lookup(TOP_OBJECTS, O_N, k, kn)) >= 0) {
                if (f->obj_st[o] != ABSENT)
                    return -1;
                if (s->p < s->end && *s->p == 'n') {
                    f->obj_st[o] = NUL;
                    rc = lit(s, "null", 4);
                } else {
                    f->obj_st[o] = PRESENT;
                    rc = members(s, f, o);
                }
            } else {
                rc = skip_scalar(s);
            }
        } else {
            int i = lookup(NEST_COUNTS, C_NEST_N, k, kn);
            rc = i >= 0 ? count(s, &f->nest[which][i], &f->nest_st[which][i]) : skip_scalar(s);
        }
        if (rc != 0)
            return -1;
        ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            ws(s);
            continue;
        }
        return lit(s, "}", 1);
    }
}

/* get_obj_alt of usage.c: the first of two objects that is present. */
static int pick(const fields *f, int a, int b) {
    return f->obj_st[a] == PRESENT ? a : f->obj_st[b] == PRESENT ? b : -1;
}

#define TOP(i) (f->top_st[i] == PRESENT ? f->top[i] : 0)
#define HAS(i) (f->top_st[i] == PRESENT)

static int openai(const fields *f, int embedding, cg_usage *out) {
    if (embedding) {
        out->embedding = HAS(C_PROMPT) ? TOP(C_PROMPT) : TOP(C_TOTAL);
        if (HAS(C_PROMPT) || HAS(C_TOTAL))
            out->have = CG_USAGE_HAVE_EMBED;
        return 0;
    }
    int p_prompt = HAS(C_PROMPT) || HAS(C_INPUT);
    int p_completion = HAS(C_COMPLETION) || HAS(C_OUTPUT);
    int64_t prompt = HAS(C_PROMPT) ? f->top[C_PROMPT] : TOP(C_INPUT);
    int64_t completion = HAS(C_COMPLETION) ? f->top[C_COMPLETION] : TOP(C_OUTPUT);
    int pd = pick(f, O_PTD, O_ITD), cd = pick(f, O_CTD, O_OTD);
    int p_cached = pd >= 0 && f->nest_st[pd][N_CACHED] == PRESENT;
    int p_reasoning = cd >= 0 && f->nest_st[cd][N_REASONING] == PRESENT;
    int64_t cached = p_cached ? f->nest[pd][N_CACHED] : 0;
    int64_t reasoning = p_reasoning ? f->nest[cd][N_REASONING] : 0;
    if (cached > prompt || reasoning > completion)
        return -1; /* refused by cg_usage_from_openai: jansson's path says so */
    out->input = prompt - cached;
    out->cached_read = cached;
    out->output = completion;
    out->reasoning = reasoning;
    if (p_prompt || p_cached)
        out->have |= CG_USAGE_HAVE_INPUT;
    if (p_completion || p_reasoning)
        out->have |= CG_USAGE_HAVE_OUTPUT;
    return 0;
}

static int anthropic(const fields *f, cg_usage *out) {
    int cc = f->obj_st[O_CC] == PRESENT, stu = f->obj_st[O_STU] == PRESENT;
    int p_w5 = cc && f->nest_st[O_CC][N_E5M] == PRESENT;
    int p_w1 = cc && f->nest_st[O_CC][N_E1H] == PRESENT;
    out->input = TOP(C_INPUT);
    out->cached_read = TOP(C_CREAD);
    if (p_w5 || p_w1) {
        out->cache_write_5m = p_w5 ? f->nest[O_CC][N_E5M] : 0;
        out->cache_write_1h = p_w1 ? f->nest[O_CC][N_E1H] : 0;
    } else {
        out->cache_write_5m = TOP(C_CCREATE);
    }
    out->output = TOP(C_OUTPUT);
    out->web_searches = stu && f->nest_st[O_STU][N_WEB] == PRESENT ? f->nest[O_STU][N_WEB] : 0;
    if (HAS(C_INPUT) || HAS(C_CREAD) || HAS(C_CCREATE) || p_w5 || p_w1)
        out->have |= CG_USAGE_HAVE_INPUT;
    if (HAS(C_OUTPUT))
        out->have |= CG_USAGE_HAVE_OUTPUT;
    return 0;
}

int cg_provider_scan_usage(cg_api api, int embedding, const char *p, size_t n, cg_usage *out) {
    fields f;
    scan s = {p, p + n};
    memset(&f, 0, sizeof f);
    if (members(&s, &f, -1) != 0)
        return 1;
    ws(&s);
    if (s.p != s.end)
        return 1;
    cg_usage u;
    memset(&u, 0, sizeof u);
    int rc = api == CG_API_ANTHROPIC ? anthropic(&f, &u) : openai(&f, embedding, &u);
    if (rc != 0)
        return 1;
    *out = u;
    return 0;
}
