/* classify: request-time intent and complexity classification for tiering.
 *
 * Owns: the built-in keyword lists (seed 001's simple/complex lists plus
 * English and the markers of seed 000's tiering table), the keyword index
 * built once at construction, the scan (one pass over the text: 64-byte
 * blocks as bit masks where SSE2 exists, checked against the portable
 * byte-by-byte pass, which skips the inside of ASCII words; bitmaps of the
 * lower-cased first two bytes and of hashes of the first three and four
 * bytes of every keyword reject almost every other position, and an index
 * by the first two bytes gives the candidates of a hit), the regex
 * prefilter (a literal every match must contain), the head and tail
 * windows of a long text, the feature counts, the complexity score and the
 * tier rules.
 * See classify.h for the contract and docs/tiering.md for the rules.
 */
#include "route/classify.h"

#include <math.h>
#include <regex.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INTENTS 64
#define MAX_KEYWORDS 4096
#define KW_MAX_LEN 63
#define REGEX_WINDOW_MAX 16384
#define REGEX_LIT_MAX 32 /* longest literal kept as a regex's prefilter */
#define LOG_TABLE 256    /* log1p of counts below this is looked up */

enum {
    L_SIMPLE = 0,
    L_COMPLEX,
    L_MULTISTEP,
    L_REASONING,
    L_CODE,
    L_MATH,
    L_LONGOUT,
    L_INTENT, /* an intent's keyword; kw.intent says which */
    L_COUNT
};
_Static_assert(L_INTENT == CG_KW_LISTS, "cg_kw_hits.list follows the lists");

/* ------------------------------------------------------------------ */
/* Built-in lists                                                       */

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *const simple_kw[] = {
    /* seed 001 */
    "번역해", "요약해", "정의해", "뭐야", "알려줘",
    /* English equivalents */
    "translate", "summarize", "summarise", "define", "definition of", "what is", "what's", "who is",
    "meaning of", "tl;dr"};
static const char *const complex_kw[] = {
    /* seed 001 */
    "분석해", "설계해", "비교해서", "왜", "어떻게 최적화",
    /* English equivalents */
    "analyze", "analyse", "design a", "architect", "compare", "why", "optimize", "optimise",
    "trade-off", "tradeoff", "evaluate", "critique", "in depth", "in-depth"};
static const char *const multistep_kw[] = {
    "step by step", "step-by-step", "단계별",   "단계적으로", "먼저",       "그 다음",  "그다음",
    "first,",       "then,",        "finally,", "after that", "multi-step", "plan for", "계획을"};
static const char *const reasoning_kw[] = {
    "prove", "proof",           "증명",           "derive", "유도해", "rigorous",  "theorem",
    "lemma", "think carefully", "reason through", "puzzle", "riddle", "논리적으로"};
static const char *const code_kw[] = {
    /* syntax */
    "```", "def ", "#include", "console.log", "printf(", "=>", "public static", "function(",
    "fn main", "#!/", "</div>", "std::",
    /* code tasks */
    "코드", "함수", "구현해", "디버그", "컴파일", "stack trace", "traceback", "segfault",
    "compile error", "syntax error", "unit test", "refactor", "debug", "write a function",
    "write a program", "write code", "write a script", "implement", "sql query", "regex",
    "bash script",
    /* languages that rarely mean anything else */
    "python", "javascript", "typescript", "c++", "golang", "kotlin"};
static const char *const math_kw[] = {
    "\\frac",     "\\sqrt",      "\\int",  "\\sum",     "$$",      "equation", "integral",
    "derivative", "probability", "solve",  "calculate", "compute", "how many", "how much",
    "percent",    "계산",        "방정식", "확률",      "풀어",    "몇 개",    "얼마"};
static const char *const long_output_kw[] = {
    "in detail", "detailed", "comprehensive", "essay",  "report",     "thorough",  "자세히",
    "상세히",    "상세하게", "보고서",        "에세이", "1000 words", "2000 words"};

static const char *const i_small_talk[] = {"안녕",      "고마워",       "감사합니다", "반가워",
                                           "hello",     "hi",           "hey",        "thanks",
                                           "thank you", "good morning", "how are you"};
static const char *const i_translate[] = {"번역해",       "번역",        "translate", "translation",
                                          "into english", "into korean", "영어로",    "한국어로"};
static const char *const i_summarize[] = {"요약해",    "요약",    "summarize",
                                          "summarise", "summary", "tl;dr"};
static const char *const i_lookup[] = {"정의해",     "뭐야",   "알려줘", "무엇인가",
                                       "what is",    "what's", "who is", "define",
                                       "meaning of", "언제",   "어디"};
static const char *const i_code[] = {
    "코드",      "함수",  "구현해",   "디버그",      "```",       "write a function",
    "implement", "debug", "refactor", "stack trace", "traceback", "compile error",
    "unit test"};
static const char *const i_math[] = {"계산해",    "풀어",     "방정식",   "solve",
                                     "calculate", "equation", "integral", "probability"};
static const char *const i_analysis[] = {"분석해",  "비교해서", "비교해",        "analyze",
                                         "analyse", "compare",  "pros and cons", "trade-off"};
static const char *const i_design[] = {"설계해", "아키텍처", "design a", "architecture",
                                       "system design"};
static const char *const i_reasoning[] = {"증명해", "prove that", "proof", "rigorous"};

static const cg_intent_rule default_intents[] = {
    {"translate", CG_TIER_SMALL, 1, i_translate, N(i_translate), NULL, 0},
    {"summarize", CG_TIER_SMALL, 1, i_summarize, N(i_summarize), NULL, 0},
    {"simple_lookup", CG_TIER_SMALL, 1, i_lookup, N(i_lookup), NULL, 0},
    {"code", CG_TIER_MEDIUM, 0, i_code, N(i_code), NULL, 0},
    {"math", CG_TIER_MEDIUM, 0, i_math, N(i_math), NULL, 0},
    {"analysis", CG_TIER_LARGE, 0, i_analysis, N(i_analysis), NULL, 0},
    {"design", CG_TIER_LARGE, 0, i_design, N(i_design), NULL, 0},
    {"reasoning", CG_TIER_REASONING, 0, i_reasoning, N(i_reasoning), NULL, 0},
    /* last: a greeting inside a task prompt does not make it small talk (ties go to
     * the earlier intent) */
    {"small_talk", CG_TIER_SMALL, 1, i_small_talk, N(i_small_talk), NULL, 0},
};

void cg_classify_cfg_default(cg_classify_cfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->intents = default_intents;
    cfg->n_intents = N(default_intents);
    cfg->simple_keywords = simple_kw;
    cfg->n_simple_keywords = N(simple_kw);
    cfg->complex_keywords = complex_kw;
    cfg->n_complex_keywords = N(complex_kw);
    cfg->multistep_keywords = multistep_kw;
    cfg->n_multistep_keywords = N(multistep_kw);
    cfg->reasoning_keywords = reasoning_kw;
    cfg->n_reasoning_keywords = N(reasoning_kw);
    cfg->code_keywords = code_kw;
    cfg->n_code_keywords = N(code_kw);
    cfg->math_keywords = math_kw;
    cfg->n_math_keywords = N(math_kw);
    cfg->long_output_keywords = long_output_kw;
    cfg->n_long_output_keywords = N(long_output_kw);
    cfg->simple_max_words = 30;
    cfg->complex_min_words = 100;
    cfg->long_output_tokens = 2000;
    cfg->short_output_tokens = 64;
    cfg->many_turns = 8;
    cfg->small_below = 0.30f;
    cfg->large_from = 0.65f;
    cfg->scan_max_bytes = 8192;
    cfg->regex_max_bytes = 4096;
}

/* ------------------------------------------------------------------ */
/* Names                                                                */

static const char *const tier_names[CG_TIER_COUNT] = {"small", "medium", "large", "reasoning"};

const char *cg_tier_name(int tier) {
    return tier >= 0 && tier < CG_TIER_COUNT ? tier_names[tier] : "none";
}

int cg_tier_parse(const char *s, int *out) {
    for (int i = 0; s && i < CG_TIER_COUNT; i++)
        if (strcmp(s, tier_names[i]) == 0) {
            *out = i;
            return 0;
        }
    return -1;
}

const char *cg_intent_source_name(cg_intent_source s) {
    switch (s) {
    case CG_INTENT_HEADER:
        return "header";
    case CG_INTENT_TAG:
        return "tag";
    case CG_INTENT_RULE:
        return "rule";
    default:
        return "none";
    }
}

static const char *const feat_names[CG_CLASS_NFEAT] = {
    "log_words",   "log_bytes", "digit_frac",  "numbers",   "math",      "code",
    "multistep",   "simple_kw", "complex_kw",  "reason_kw", "questions", "lines",
    "hangul_frac", "options",   "long_output", "turns",     "score"};

const char *cg_class_feature_name(size_t i) {
    return i < CG_CLASS_NFEAT ? feat_names[i] : NULL;
}

/* ------------------------------------------------------------------ */
/* Construction                                                         */

typedef struct kw {
    char s[KW_MAX_LEN + 1]; /* lower-cased */
    uint16_t key;           /* first two bytes */
    uint8_t len;
    uint8_t list;
    uint8_t bstart, bend; /* word boundary needed at start / end */
    uint16_t intent;      /* for L_INTENT */
} kw;

/* A compiled intent regex and its prefilter: a literal (lower-cased ASCII)
 * that every match contains; regexec runs only when the text contains it
 * (any case). lit_len 0: no such literal was found, regexec always runs. */
typedef struct rx {
    regex_t re;
    char lit[REGEX_LIT_MAX + 1];
    size_t lit_len;
} rx;

typedef struct intent {
    char name[CG_INTENT_NAME_MAX];
    int tier;
    int simple;
    rx *re;
    size_t n_re;
} intent;

struct cg_classifier {
    cg_classify_cfg cfg; /* scalars only; list pointers are cleared */
    uint64_t serial;     /* cg_classifier_serial */
    kw *kws;
    size_t n_kws;
    intent intents[MAX_INTENTS];
    size_t n_intents;
    size_t n_regex;         /* over all intents */
    uint8_t cls[256];       /* B_* class of each byte */
    uint8_t first[256];     /* 1: the byte, lower-cased, starts some keyword */
    uint16_t start2[65537]; /* kws[start2[k] .. start2[k + 1]) have first two bytes k */
    /* the prefilter, one bit per key: a position is tried only if the
     * keywords can start there by their first 2, 3 and 4 bytes */
    uint64_t p2[65536 / 64];     /* first two bytes of every keyword */
    uint64_t s2[65536 / 64];     /* ... of the 2-byte keywords */
    uint64_t s3[65536 / 64];     /* hash of the first three bytes of the 3-byte keywords */
    uint64_t p3[65536 / 64];     /* ... of the longer keywords */
    uint64_t p4[65536 / 64];     /* hash of the first four bytes of those */
    double log1p_tab[LOG_TABLE]; /* log1p(i): the features' counts are small */
};

/* Byte classes for the scan loop. */
enum { B_SPACE = 1, B_DIGIT = 2, B_OP = 4, B_NL = 8, B_QUEST = 16, B_HIGH = 32, B_LETTER = 64 };
#define B_WORD (B_LETTER | B_DIGIT) /* is_alnum_ascii() by table */

static uint8_t byte_class(unsigned b) {
    if (b == ' ' || (b >= '\t' && b <= '\r'))
        return b == '\n' ? B_SPACE | B_NL : B_SPACE;
    if (b >= '0' && b <= '9')
        return B_DIGIT;
    if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || b == '_')
        return B_LETTER;
    if (b == '+' || b == '-' || b == '*' || b == '/' || b == '^' || b == '=')
        return B_OP;
    if (b == '?')
        return B_QUEST;
    return b >= 0x80 ? B_HIGH : 0;
}

static const uint8_t *lc_table(void) {
    static const uint8_t t[256] = {
#define R(x) (uint8_t)((x) >= 'A' && (x) <= 'Z' ? (x) + 32 : (x))
#define R4(x) R(x), R(x + 1), R(x + 2), R(x + 3)
#define R16(x) R4(x), R4(x + 4), R4(x + 8), R4(x + 12)
#define R64(x) R16(x), R16(x + 16), R16(x + 32), R16(x + 48)
        R64(0), R64(64), R64(128), R64(192)
#undef R64
#undef R16
#undef R4
#undef R
    };
    return t;
}

/* 16-bit hash of three or four lower-cased bytes (the keyword prefilter). */
static uint32_t hash3(uint32_t k3) {
    return (k3 * UINT32_C(2654435761)) >> 16;
}

static uint32_t hash4(uint32_t k4) {
    return (k4 * UINT32_C(0x9E3779B1)) >> 16;
}

static void bit_set(uint64_t *bm, uint32_t k) {
    bm[k >> 6] |= UINT64_C(1) << (k & 63);
}

static int bit_has(const uint64_t *bm, uint32_t k) {
    return (int)((bm[k >> 6] >> (k & 63)) & 1);
}

static int is_alnum_ascii(uint8_t b) {
    return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || b == '_';
}

static void set_err(char *err, size_t cap, const char *fmt, const char *a, const char *b) {
    if (err && cap)
        snprintf(err, cap, fmt, a ? a : "", b ? b : "");
}

static int valid_intent_name(const char *s, char *out) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= CG_INTENT_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            return 0;
        out[i] = c;
    }
    out[n] = '\0';
    return 1;
}

static int add_kw(cg_classifier *c, const char *s, int list, size_t intent_ix, char *err,
                  size_t cap) {
    size_t n = s ? strlen(s) : 0;
    if (n < 2 || n > KW_MAX_LEN) {
        set_err(err, cap, "keyword \"%s\": must be 2..63 bytes%s", s ? s : "(null)", NULL);
        return -1;
    }
    uint8_t b0 = (uint8_t)s[0];
    if (b0 == ' ' || (b0 >= '\t' && b0 <= '\r') || (b0 >= 0x80 && b0 < 0xC0)) {
        set_err(err, cap,
                "keyword \"%s\": must not start with whitespace or a UTF-8 "
                "continuation byte%s",
                s, NULL);
        return -1;
    }
    if (c->n_kws >= MAX_KEYWORDS) {
        set_err(err, cap, "too many keywords (max 4096)%s%s", NULL, NULL);
        return -1;
    }
    const uint8_t *lc = lc_table();
    kw *k = &c->kws[c->n_kws++];
    for (size_t i = 0; i < n; i++)
        k->s[i] = (char)lc[(uint8_t)s[i]];
    k->s[n] = '\0';
    k->len = (uint8_t)n;
    k->list = (uint8_t)list;
    k->intent = (uint16_t)intent_ix;
    k->bstart = (uint8_t)is_alnum_ascii((uint8_t)k->s[0]);
    k->bend = (uint8_t)is_alnum_ascii((uint8_t)k->s[n - 1]);
    k->key = (uint16_t)(((uint8_t)k->s[0] << 8) | (uint8_t)k->s[1]);
    return 0;
}

static int add_list(cg_classifier *c, const char *const *v, size_t n, int list, char *err,
                    size_t cap) {
    if (n && !v) {
        set_err(err, cap, "keyword list is NULL with a non-zero count%s%s", NULL, NULL);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (add_kw(c, v[i], list, 0, err, cap) != 0)
            return -1;
    return 0;
}

/* Index just past a bracket expression opening at re[i] ("[...]", with a
 * leading "^", a leading "]" and "[:class:]"-style parts), or 0 if it does
 * not close. */
static size_t skip_bracket(const char *re, size_t i) {
    size_t j = i + 1;
    if (re[j] == '^')
        j++;
    if (re[j] == ']')
        j++;
    while (re[j] && re[j] != ']') {
        if (re[j] == '[' && (re[j + 1] == ':' || re[j + 1] == '.' || re[j + 1] == '=')) {
            char t = re[j + 1];
            j += 2;
            while (re[j] && !(re[j] == t && re[j + 1] == ']'))
                j++;
            if (!re[j])
                return 0;
            j += 2;
        } else {
            j++;
        }
    }
    return re[j] ? j + 1 : 0;
}

/* Index just past the quantifier at re[i] ("*", "+", "?", "{m,n}"), or i. */
static size_t skip_quantifier(const char *re, size_t i) {
    if (re[i] == '*' || re[i] == '+' || re[i] == '?')
        return i + 1;
    if (re[i] == '{') {
        size_t j = i + 1;
        while (re[j] && re[j] != '}')
            j++;
        return re[j] ? j + 1 : j;
    }
    return i;
}

size_t cg_regex_literal(const char *re, char *out, size_t cap) {
    char cur[REGEX_LIT_MAX + 1];
    size_t cl = 0, best = 0, i = 0;
    int depth = 0;
    if (!out || cap == 0)
        return 0;
    out[0] = '\0';
    if (!re || strchr(re, '|'))
        return 0; /* an alternation anywhere: no literal is sure to be needed */
    const uint8_t *lc = lc_table();
    for (;;) {
        /* the run ends at anything but a literal at the top level */
        int end_run = 1, lit = -1;
        size_t next = i + 1;
        unsigned char ch = (unsigned char)re[i];
        if (ch == '\\') {
            unsigned char e = (unsigned char)re[i + 1];
            if (!e)
                ch = 0; /* a trailing backslash: regcomp refused it already */
            else
                next = i + 2;
            /* \. \* \\ ... are literals; \w \b \< \1 ... are not */
            if (e && e < 0x80 &&
                !((e >= '0' && e <= '9') || (e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') ||
                  e == '<' || e == '>' || e == '`' || e == '\''))
                lit = e;
        } else if (ch == '[') {
            next = skip_bracket(re, i);
            if (!next)
                ch = 0;
        } else if (ch == '(') {
            depth++;
        } else if (ch == ')') {
            depth--;
        } else if (ch > 0 && ch < 0x80 && !strchr(".^$*+?{}", ch)) {
            lit = ch;
        }
        if (ch == 0)
            break;
        size_t q = skip_quantifier(re, next);
        if (lit >= 0 && depth == 0) {
            int optional = q != next && re[next] != '+';
            if (!optional && cl < REGEX_LIT_MAX) {
                cur[cl++] = (char)lc[lit];
                end_run = q != next; /* "ab+c": "ab" is sure to be there, "bc" not */
            }
        }
        if (end_run || q != next) {
            if (cl > best && cl >= 2 && cl < cap) {
                memcpy(out, cur, cl);
                best = cl;
            }
            cl = 0;
        }
        i = q;
        if (re[i] == '\0') {
            if (cl > best && cl >= 2 && cl < cap) {
                memcpy(out, cur, cl);
                best = cl;
            }
            break;
        }
    }
    out[best] = '\0';
    return best;
}

static int kw_cmp(const void *a, const void *b) {
    const kw *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return strcmp(x->s, y->s);
}

static size_t total_keywords(const cg_classify_cfg *cfg) {
    size_t n = cfg->n_simple_keywords + cfg->n_complex_keywords + cfg->n_multistep_keywords +
               cfg->n_reasoning_keywords + cfg->n_code_keywords + cfg->n_math_keywords +
               cfg->n_long_output_keywords;
    for (size_t i = 0; i < cfg->n_intents && i < MAX_INTENTS; i++)
        n += cfg->intents[i].n_keywords;
    return n;
}

uint64_t cg_classifier_serial(const cg_classifier *c) {
    return c ? c->serial : 0;
}

void cg_classifier_free(cg_classifier *c) {
    if (!c)
        return;
    for (size_t i = 0; i < c->n_intents; i++) {
        for (size_t j = 0; j < c->intents[i].n_re; j++)
            regfree(&c->intents[i].re[j].re);
        free(c->intents[i].re);
    }
    free(c->kws);
    free(c);
}

cg_classifier *cg_classifier_new(const cg_classify_cfg *cfg_in, char *err, size_t errcap) {
    cg_classify_cfg defaults;
    if (!cfg_in) {
        cg_classify_cfg_default(&defaults);
        cfg_in = &defaults;
    }
    const cg_classify_cfg *cfg = cfg_in;
    if (err && errcap)
        err[0] = '\0';
    if (cfg->n_intents > MAX_INTENTS || (cfg->n_intents && !cfg->intents)) {
        set_err(err, errcap, "intents: at most 64, and a list must be given%s%s", NULL, NULL);
        return NULL;
    }
    if (!(cfg->small_below >= 0.0f && cfg->small_below <= cfg->large_from &&
          cfg->large_from <= 1.0f)) {
        set_err(err, errcap, "thresholds: need 0 <= small_below <= large_from <= 1%s%s", NULL,
                NULL);
        return NULL;
    }
    if (cfg->simple_max_words < 0 || cfg->complex_min_words < 0 || cfg->scan_max_bytes == 0 ||
        cfg->regex_max_bytes > REGEX_WINDOW_MAX) {
        set_err(err, errcap,
                "word limits must be >= 0, scan_max_bytes > 0, regex_max_bytes <= 16384%s%s", NULL,
                NULL);
        return NULL;
    }
    size_t nk = total_keywords(cfg);
    if (nk > MAX_KEYWORDS) {
        set_err(err, errcap, "too many keywords (max 4096)%s%s", NULL, NULL);
        return NULL;
    }
    static atomic_uint_fast64_t serials;
    cg_classifier *c = calloc(1, sizeof *c);
    if (!c) {
        set_err(err, errcap, "out of memory%s%s", NULL, NULL);
        return NULL;
    }
    c->cfg = *cfg;
    c->serial = (uint64_t)atomic_fetch_add(&serials, 1) + 1;
    c->cfg.intents = NULL;
    c->cfg.simple_keywords = c->cfg.complex_keywords = c->cfg.multistep_keywords = NULL;
    c->cfg.reasoning_keywords = c->cfg.code_keywords = c->cfg.math_keywords = NULL;
    c->cfg.long_output_keywords = NULL;
    c->kws = calloc(nk ? nk : 1, sizeof *c->kws);
    if (!c->kws) {
        set_err(err, errcap, "out of memory%s%s", NULL, NULL);
        goto fail;
    }
    if (add_list(c, cfg->simple_keywords, cfg->n_simple_keywords, L_SIMPLE, err, errcap) ||
        add_list(c, cfg->complex_keywords, cfg->n_complex_keywords, L_COMPLEX, err, errcap) ||
        add_list(c, cfg->multistep_keywords, cfg->n_multistep_keywords, L_MULTISTEP, err, errcap) ||
        add_list(c, cfg->reasoning_keywords, cfg->n_reasoning_keywords, L_REASONING, err, errcap) ||
        add_list(c, cfg->code_keywords, cfg->n_code_keywords, L_CODE, err, errcap) ||
        add_list(c, cfg->math_keywords, cfg->n_math_keywords, L_MATH, err, errcap) ||
        add_list(c, cfg->long_output_keywords, cfg->n_long_output_keywords, L_LONGOUT, err, errcap))
        goto fail;
    for (size_t i = 0; i < cfg->n_intents; i++) {
        const cg_intent_rule *r = &cfg->intents[i];
        intent *it = &c->intents[c->n_intents];
        if (!valid_intent_name(r->name, it->name)) {
            set_err(err, errcap, "intent \"%s\": name must be 1..31 of [a-z0-9_.-]%s",
                    r->name ? r->name : "(null)", NULL);
            goto fail;
        }
        for (size_t j = 0; j < c->n_intents; j++)
            if (strcmp(c->intents[j].name, it->name) == 0) {
                set_err(err, errcap, "intent \"%s\": defined twice%s", it->name, NULL);
                goto fail;
            }
        if (r->tier != CG_TIER_NONE && (r->tier < 0 || r->tier >= CG_TIER_COUNT)) {
            set_err(err, errcap, "intent \"%s\": bad tier%s", it->name, NULL);
            goto fail;
        }
        it->tier = r->tier;
        it->simple = r->simple != 0;
        c->n_intents++;
        if (r->n_keywords && !r->keywords) {
            set_err(err, errcap, "intent \"%s\": keyword list is NULL%s", it->name, NULL);
            goto fail;
        }
        for (size_t j = 0; j < r->n_keywords; j++)
            if (add_kw(c, r->keywords[j], L_INTENT, i, err, errcap) != 0)
                goto fail;
        if (r->n_regexes) {
            if (!r->regexes || r->n_regexes > 64) {
                set_err(err, errcap, "intent \"%s\": regex list is NULL or longer than 64%s",
                        it->name, NULL);
                goto fail;
            }
            it->re = calloc(r->n_regexes, sizeof *it->re);
            if (!it->re) {
                set_err(err, errcap, "out of memory%s%s", NULL, NULL);
                goto fail;
            }
            for (size_t j = 0; j < r->n_regexes; j++) {
                int rc = r->regexes[j] ? regcomp(&it->re[j].re, r->regexes[j],
                                                 REG_EXTENDED | REG_ICASE | REG_NOSUB)
                                       : REG_BADPAT;
                if (rc != 0) {
                    set_err(err, errcap, "intent \"%s\": bad regex \"%s\"", it->name,
                            r->regexes[j] ? r->regexes[j] : "(null)");
                    goto fail;
                }
                it->n_re++;
                c->n_regex++;
                it->re[j].lit_len =
                    cg_regex_literal(r->regexes[j], it->re[j].lit, sizeof it->re[j].lit);
            }
        }
    }
    qsort(c->kws, c->n_kws, sizeof *c->kws, kw_cmp);
    for (unsigned b = 0; b < 256; b++)
        c->cls[b] = byte_class(b);
    for (size_t i = 0, k = 0; k <= 65536; k++) {
        while (i < c->n_kws && c->kws[i].key < k)
            i++;
        c->start2[k] = (uint16_t)i;
    }
    const uint8_t *lc = lc_table();
    for (size_t i = 0; i < c->n_kws; i++) {
        const kw *w = &c->kws[i];
        uint32_t k3 = ((uint32_t)w->key << 8) | (uint8_t)w->s[2];
        for (unsigned b = 0; b < 256; b++)
            c->first[b] |= lc[b] == (uint8_t)w->s[0];
        bit_set(c->p2, w->key);
        if (w->len == 2) {
            bit_set(c->s2, w->key);
        } else if (w->len == 3) {
            bit_set(c->s3, hash3(k3));
        } else {
            bit_set(c->p3, hash3(k3));
            bit_set(c->p4, hash4((k3 << 8) | (uint8_t)w->s[3]));
        }
    }
    for (size_t i = 0; i < LOG_TABLE; i++)
        c->log1p_tab[i] = log1p((double)i);
    return c;
fail:
    cg_classifier_free(c);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Scanning                                                             */

/* Length of the valid UTF-8 sequence at p (2..4), or 0 if invalid; the
 * code point in *cp. Never reads past p + n. */
static inline __attribute__((always_inline)) size_t utf8_seq(const uint8_t *p, size_t n,
                                                             uint32_t *cp) {
    uint8_t b = p[0];
    size_t len;
    uint32_t v, min;
    if (b >= 0xC2 && b <= 0xDF) {
        len = 2, v = b & 0x1F, min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3, v = b & 0x0F, min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4, v = b & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

static int is_digit(uint8_t b) {
    return b >= '0' && b <= '9';
}

typedef struct counts {
    uint32_t words, digits, numbers, lines, questions, hangul_bytes, options, numbered;
    uint32_t code_lines, math_ops;
    uint16_t list[L_COUNT];
    uint16_t intent[MAX_INTENTS];
    int bad_utf8;
} counts;

static void sat_inc(uint16_t *v) {
    if (*v < UINT16_MAX)
        (*v)++;
}

static uint16_t sat_add16(uint16_t a, uint16_t b) {
    return (uint16_t)(a + b < UINT16_MAX ? a + b : UINT16_MAX);
}

static uint32_t sat_add32(uint32_t a, uint32_t b) {
    return a + b < a ? UINT32_MAX : a + b;
}

/* k += t (the head and the tail window of a long prompt). */
static void add_counts(counts *k, const counts *t, size_t n_intents) {
    k->words = sat_add32(k->words, t->words);
    k->digits = sat_add32(k->digits, t->digits);
    k->numbers = sat_add32(k->numbers, t->numbers);
    k->lines = sat_add32(k->lines, t->lines);
    k->questions = sat_add32(k->questions, t->questions);
    k->hangul_bytes = sat_add32(k->hangul_bytes, t->hangul_bytes);
    k->options = sat_add32(k->options, t->options);
    k->numbered = sat_add32(k->numbered, t->numbered);
    k->code_lines = sat_add32(k->code_lines, t->code_lines);
    k->math_ops = sat_add32(k->math_ops, t->math_ops);
    for (size_t i = 0; i < L_COUNT; i++)
        k->list[i] = sat_add16(k->list[i], t->list[i]);
    for (size_t i = 0; i < n_intents; i++)
        k->intent[i] = sat_add16(k->intent[i], t->intent[i]);
    k->bad_utf8 |= t->bad_utf8;
}

/* v scaled up to the whole text (rounded, capped). */
static uint32_t scaled(uint32_t v, double scale) {
    double x = (double)v * scale + 0.5;
    return x >= (double)UINT32_MAX ? UINT32_MAX : (uint32_t)x;
}

/* A line start: "A. ", "b) " (choice) or "12. ", "3) " (numbered step). */
static void line_start(const uint8_t *p, size_t n, size_t i, counts *k) {
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    if (i + 1 >= n)
        return;
    uint8_t a = p[i];
    if (((a >= 'A' && a <= 'J') || (a >= 'a' && a <= 'j')) &&
        (p[i + 1] == '.' || p[i + 1] == ')') &&
        (i + 2 == n || p[i + 2] == ' ' || p[i + 2] == '\t')) {
        k->options++;
        return;
    }
    size_t j = i;
    while (j < n && j < i + 3 && is_digit(p[j]))
        j++;
    if (j > i && j < n && (p[j] == '.' || p[j] == ')') && (j + 1 == n || p[j + 1] == ' '))
        k->numbered++;
}

/* An operator at p[i] with a digit on each side (one space allowed
 * between): a math operation. */
static inline int op_by_digits(const uint8_t *p, size_t n, size_t i) {
    int before =
        (i >= 1 && is_digit(p[i - 1])) || (i >= 2 && p[i - 1] == ' ' && is_digit(p[i - 2]));
    int after =
        (i + 1 < n && is_digit(p[i + 1])) || (i + 2 < n && p[i + 1] == ' ' && is_digit(p[i + 2]));
    return before && after;
}

/* What a decoded code point counts for: Hangul syllables (their three
 * bytes) and the full-width question mark. */
static inline void count_code_point(uint32_t cp, counts *k) {
    if (cp >= 0xAC00 && cp <= 0xD7A3)
        k->hangul_bytes += 3;
    else if (cp == 0xFF1F)
        k->questions++;
}

static __attribute__((noinline)) void match_at(const cg_classifier *c, const uint8_t *p, size_t n,
                                               size_t i, const uint8_t *lc, counts *k) {
    uint16_t key = (uint16_t)((lc[p[i]] << 8) | lc[p[i + 1]]);
    size_t lo = c->start2[key], hi = c->start2[key + 1];
    for (size_t j = lo; j < hi; j++) {
        const kw *w = &c->kws[j];
        if (w->len > n - i)
            continue;
        size_t m = 2;
        while (m < w->len && lc[p[i + m]] == (uint8_t)w->s[m])
            m++;
        if (m != w->len)
            continue;
        if (w->bstart && i > 0 && (c->cls[p[i - 1]] & B_WORD))
            continue;
        if (w->bend && i + m < n && (c->cls[p[i + m]] & B_WORD))
            continue;
        sat_inc(&k->list[w->list]);
        if (w->list == L_INTENT)
            sat_inc(&k->intent[w->intent]);
    }
}

static int is_code_end(uint8_t b) {
    return b == ';' || b == '{' || b == '}';
}

/* Keyword prefilter at position i (i + 1 < n): the first two bytes must
 * start some keyword; then a 2-byte keyword, a 3-byte keyword by a hash of
 * three bytes, or a longer one by hashes of three and of four bytes. Only
 * a position that passes is compared with the keywords (match_at). */
static inline __attribute__((always_inline)) void try_keywords(const cg_classifier *c,
                                                               const uint8_t *p, size_t n, size_t i,
                                                               const uint8_t *lc, counts *k) {
    uint32_t k2 = ((uint32_t)lc[p[i]] << 8) | lc[p[i + 1]];
    if (!bit_has(c->p2, k2))
        return;
    if (!bit_has(c->s2, k2)) {
        if (i + 2 >= n)
            return;
        uint32_t k3 = (k2 << 8) | lc[p[i + 2]], h3 = hash3(k3);
        if (!bit_has(c->s3, h3) &&
            (i + 3 >= n || !bit_has(c->p3, h3) || !bit_has(c->p4, hash4((k3 << 8) | lc[p[i + 3]]))))
            return;
    }
    match_at(c, p, n, i, lc, k);
}

/* The end of the run of B_LETTER bytes ([A-Za-z_]) from j: the first index
 * at or after j that is not one, or n. 16 bytes at a time where the text
 * has them (the inside of words was ~a third of the scan's instructions). */
static inline size_t letters_end(const uint8_t *cls, const uint8_t *p, size_t j, size_t n) {
#if defined(__SSE2__)
    const __m128i a = _mm_set1_epi8('a'), low = _mm_set1_epi8(0x20), z = _mm_set1_epi8(25),
                  us = _mm_set1_epi8('_');
    while (j + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + j));
        /* (b | 0x20) - 'a' <= 25 (unsigned) is exactly A-Z and a-z */
        __m128i d = _mm_sub_epi8(_mm_or_si128(v, low), a);
        __m128i letter = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(d, z), d), _mm_cmpeq_epi8(v, us));
        unsigned other = (unsigned)_mm_movemask_epi8(letter) ^ 0xFFFFu;
        if (other)
            return j + (size_t)__builtin_ctz(other);
        j += 16;
    }
#endif
    while (j < n && cls[p[j]] == B_LETTER)
        j++;
    return j;
}

/* One pass: features, and keywords tried only where one can start. A
 * keyword that starts with a letter or digit needs a word start, so the
 * inside of ASCII words is skipped in a tight loop; keywords never start
 * with whitespace or a UTF-8 continuation byte. line0: p[0] starts a line.
 * The portable scan, and the reference the block scan is checked against
 * (cg_classify_scan_selfcheck). */
static void scan_bytes(const cg_classifier *c, const uint8_t *p, size_t n, int line0, counts *k) {
    const uint8_t *lc = lc_table(), *cls = c->cls;
    int in_word = 0, prev_digit = 0;
    size_t utf8_until = 0;
    uint8_t last_visible = 0; /* last non-space byte of the current line */
    if (line0)
        line_start(p, n, 0, k);
    size_t i = 0;
    while (i < n) {
        uint8_t b = p[i], f = cls[b];
        if (f == B_LETTER) {
            k->words += !in_word;
            in_word = 1;
            prev_digit = 0;
            if (i + 1 < n && (i == 0 || !(cls[p[i - 1]] & B_WORD)))
                try_keywords(c, p, n, i, lc, k);
            size_t j = letters_end(cls, p, i + 1, n);
            last_visible = p[j - 1];
            if (j < n && p[j] == ' ') { /* the usual single space: no pass of its own */
                in_word = 0;
                j++;
            }
            i = j;
            continue;
        }
        if (f & B_SPACE) {
            in_word = 0;
            prev_digit = 0;
            if (f & B_NL) {
                k->lines++;
                k->code_lines += is_code_end(last_visible);
                last_visible = 0;
                line_start(p, n, i + 1, k);
            }
            i++;
            continue;
        }
        k->words += !in_word;
        in_word = 1;
        last_visible = b;
        int check = 1;
        if (f & B_DIGIT) {
            k->digits++;
            k->numbers += !prev_digit;
            prev_digit = 1;
            check = i == 0 || !(cls[p[i - 1]] & B_WORD);
        } else {
            prev_digit = 0;
            if (f & B_OP) {
                k->math_ops += op_by_digits(p, n, i);
            } else if (f & B_QUEST) {
                k->questions++;
            } else if (f & B_HIGH) {
                check = b >= 0xC0;
                if (i >= utf8_until) {
                    uint32_t cp = 0;
                    size_t len = utf8_seq(p + i, n - i, &cp);
                    if (len == 0) {
                        k->bad_utf8 = 1;
                    } else {
                        utf8_until = i + len;
                        count_code_point(cp, k);
                    }
                }
            }
        }
        if (check && i + 1 < n)
            try_keywords(c, p, n, i, lc, k);
        i++;
    }
    k->code_lines += is_code_end(last_visible);
}

#if defined(__SSE2__)
/* utf8_seq with the common case first: a three-byte sequence whose lead
 * (E1-EC, EE, EF, or ED before the surrogates) allows any continuation
 * bytes, which is most of CJK and Hangul. */
static inline __attribute__((always_inline)) size_t utf8_seq3(const uint8_t *p, size_t n,
                                                              uint32_t *cp) {
    uint8_t b = p[0];
    if (n >= 3 && b >= 0xE1 && b <= 0xEF && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80 &&
        (b != 0xED || p[1] < 0xA0)) {
        *cp = ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
        return 3;
    }
    return utf8_seq(p, n, cp);
}

/* Bit masks of one 64-byte block: bit j stands for byte j. */
typedef struct blockmask {
    uint64_t sp, nl, word, digit, high, lead;
} blockmask;

static inline uint64_t mm(__m128i x) {
    return (uint64_t)(uint32_t)_mm_movemask_epi8(x);
}

/* Bytes in [lo, lo + len) (len <= 128), per byte: shifted so the range
 * starts at -128, one signed compare. */
static inline __m128i in_range(__m128i v, uint8_t lo, int len) {
    __m128i x = _mm_add_epi8(v, _mm_set1_epi8((char)(uint8_t)(0x80 - lo)));
    return _mm_cmplt_epi8(x, _mm_set1_epi8((char)(-128 + len)));
}

static inline __attribute__((always_inline)) void block_masks(const uint8_t *q, blockmask *m) {
    for (int h = 0; h < 4; h++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(q + 16 * h));
        /* b | 0x20 in 'a'..'z' is exactly A-Z and a-z */
        __m128i letter = _mm_or_si128(in_range(_mm_or_si128(v, _mm_set1_epi8(0x20)), 'a', 26),
                                      _mm_cmpeq_epi8(v, _mm_set1_epi8('_')));
        __m128i digit = in_range(v, '0', 10);
        __m128i space = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')), in_range(v, '\t', 5));
        uint64_t high = mm(v);
        /* >= 0xC0: signed > -65, and negative */
        uint64_t lead = mm(_mm_cmpgt_epi8(v, _mm_set1_epi8(-65))) & high;
        int sh = 16 * h;
        uint64_t sp = mm(space) << sh, nl = mm(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))) << sh,
                 word = mm(_mm_or_si128(letter, digit)) << sh, dg = mm(digit) << sh;
        if (h == 0) {
            m->sp = sp, m->nl = nl, m->word = word, m->digit = dg, m->high = high, m->lead = lead;
        } else {
            m->sp |= sp, m->nl |= nl, m->word |= word, m->digit |= dg;
            m->high |= high << sh, m->lead |= lead << sh;
        }
    }
}

static inline unsigned popcount64(uint64_t x) {
    x = x - ((x >> 1) & UINT64_C(0x5555555555555555));
    x = (x & UINT64_C(0x3333333333333333)) + ((x >> 2) & UINT64_C(0x3333333333333333));
    x = (x + (x >> 4)) & UINT64_C(0x0F0F0F0F0F0F0F0F);
    return (unsigned)((x * UINT64_C(0x0101010101010101)) >> 56);
}

/* Bits [0, j) set, j <= 64. */
static inline uint64_t below(unsigned j) {
    return j >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << j) - 1;
}

/* The scan 64 bytes at a time, counting exactly what scan_bytes counts.
 * Byte classes become bit masks; words, digits and numbers are popcounts of
 * run starts; only the positions that need a look of their own are visited
 * one by one: keyword candidates (an ASCII word's first byte, punctuation,
 * a UTF-8 lead byte), operators and '?', bytes >= 0x80 (UTF-8 checks) and
 * newlines (line starts, code-line ends). English prose has about one
 * candidate per five bytes; the inside of words is never visited. */
static void scan_blocks(const cg_classifier *c, const uint8_t *p, size_t n, int line0, counts *k) {
    const uint8_t *lc = lc_table(), *cls = c->cls;
    uint64_t prev_sp = 1, prev_digit = 0, prev_word = 0; /* byte -1: a space, not a word */
    uint8_t last_visible = 0; /* last non-space byte of the current line */
    uint64_t cover_next = 0;  /* continuation bytes of a sequence begun in the last block */
    uint8_t pad[64];
    if (line0)
        line_start(p, n, 0, k);
    for (size_t base = 0; base < n; base += 64) {
        size_t len = n - base < 64 ? n - base : 64;
        const uint8_t *q = p + base;
        if (len < 64) { /* the last block: spaces after the end count for nothing */
            memset(pad, ' ', sizeof pad);
            memcpy(pad, q, len);
            q = pad;
        }
        blockmask m;
        block_masks(q, &m);
        uint64_t valid = below((unsigned)len), ns = ~m.sp & valid;
        k->words += popcount64(ns & ((m.sp << 1) | prev_sp));
        k->digits += popcount64(m.digit);
        k->numbers += popcount64(m.digit & ~((m.digit << 1) | prev_digit));
        /* punctuation, operators, '?' and control bytes: not space, not a
         * word byte, ASCII */
        uint64_t other = ns & ~m.word & ~m.high;
        /* punctuation: '?', operators next to digits, and a keyword only
         * where one starts with that byte (most punctuation starts none) */
        for (uint64_t b = other; b; b &= b - 1) {
            size_t i = base + (size_t)__builtin_ctzll(b);
            uint8_t f = cls[p[i]];
            if (f & B_QUEST) {
                k->questions++;
            } else if (f & B_OP) {
                k->math_ops += op_by_digits(p, n, i);
            }
            if (c->first[p[i]] && i + 1 < n)
                try_keywords(c, p, n, i, lc, k);
        }
        /* UTF-8: every lead byte is decoded; a continuation byte is valid
         * only inside a valid sequence (covered), which is what the byte
         * scan finds by decoding at each byte past the last sequence */
        uint64_t covered = cover_next;
        cover_next = 0;
        for (uint64_t b = m.lead; b; b &= b - 1) {
            unsigned j = (unsigned)__builtin_ctzll(b);
            size_t i = base + j;
            uint32_t cp = 0;
            size_t sl = utf8_seq3(p + i, n - i, &cp);
            if (sl == 0) {
                k->bad_utf8 = 1;
            } else {
                if (j < 63) /* bits past 63 fall off: cover_next has them */
                    covered |= below((unsigned)sl - 1) << (j + 1);
                if (j + sl > 64)
                    cover_next = below((unsigned)(j + sl - 64));
                count_code_point(cp, k);
            }
            if (c->first[p[i]] && i + 1 < n)
                try_keywords(c, p, n, i, lc, k);
        }
        if (m.high & ~m.lead & ~covered)
            k->bad_utf8 = 1;
        /* the first byte of an ASCII word (letters and digits) */
        uint64_t wstart = m.word & ~((m.word << 1) | prev_word);
        if (base + len == n)
            wstart &= ~(UINT64_C(1) << (len - 1)); /* a keyword needs two bytes */
        for (uint64_t b = wstart; b; b &= b - 1)
            try_keywords(c, p, n, base + (size_t)__builtin_ctzll(b), lc, k);
        unsigned from = 0; /* bits [from, 64) are the current line's in this block */
        for (uint64_t b = m.nl; b; b &= b - 1) {
            unsigned j = (unsigned)__builtin_ctzll(b);
            uint64_t vis = ns & below(j) & ~below(from);
            if (vis)
                last_visible = q[63 - __builtin_clzll(vis)];
            k->lines++;
            k->code_lines += is_code_end(last_visible);
            last_visible = 0;
            line_start(p, n, base + j + 1, k);
            from = j + 1;
        }
        uint64_t vis = ns & ~below(from);
        if (vis)
            last_visible = q[63 - __builtin_clzll(vis)];
        prev_sp = m.sp >> 63;
        prev_digit = m.digit >> 63;
        prev_word = m.word >> 63;
    }
    k->code_lines += is_code_end(last_visible);
}
#endif

/* Texts shorter than one block go byte by byte: the block's setup (and the
 * padded copy of a partial block) costs more than it saves there. */
#define SCAN_BLOCKS_FROM 64

static void scan(const cg_classifier *c, const uint8_t *p, size_t n, int line0, counts *k) {
#if defined(__SSE2__)
    if (n >= SCAN_BLOCKS_FROM) {
        scan_blocks(c, p, n, line0, k);
        return;
    }
#endif
    scan_bytes(c, p, n, line0, k);
}

/* Which count differs between two scans, or NULL. */
static const char *counts_diff(const counts *a, const counts *b, size_t n_intents) {
#define D(f)                                                                                       \
    do {                                                                                           \
        if (a->f != b->f)                                                                          \
            return #f;                                                                             \
    } while (0)
    D(words);
    D(digits);
    D(numbers);
    D(lines);
    D(questions);
    D(hangul_bytes);
    D(options);
    D(numbered);
    D(code_lines);
    D(math_ops);
    D(bad_utf8);
#undef D
    for (size_t i = 0; i < L_COUNT; i++)
        if (a->list[i] != b->list[i])
            return "keyword list";
    for (size_t i = 0; i < n_intents; i++)
        if (a->intent[i] != b->intent[i])
            return "intent keyword";
    return NULL;
}

int cg_classify_scan_selfcheck(const cg_classifier *c, const char *text, size_t n, int line0,
                               char *err, size_t errcap) {
    if (!c || (!text && n))
        return -1;
    const uint8_t *p = (const uint8_t *)(text ? text : "");
    counts a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
#if defined(__SSE2__)
    scan_blocks(c, p, n, line0, &a); /* at every length, whatever scan() picks */
#else
    scan(c, p, n, line0, &a);
#endif
    scan_bytes(c, p, n, line0, &b);
    const char *d = counts_diff(&a, &b, c->n_intents);
    if (!d)
        return 0;
    set_err(err, errcap, "the block scan and the byte scan differ in %s%s", d, "");
    return -1;
}

/* ------------------------------------------------------------------ */
/* Classification                                                       */

static void reason(cg_class_result *r, const char *s) {
    if (r && r->n_reasons < CG_CLASS_MAX_REASONS)
        r->reasons[r->n_reasons++] = s;
}

static int find_intent(const cg_classifier *c, const char *name) {
    for (size_t i = 0; i < c->n_intents; i++)
        if (strcmp(c->intents[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* "[intent:NAME]" anywhere in the system text. */
static int system_tag(const char *s, size_t n, char *out) {
    static const char tag[] = "[intent:";
    const size_t tl = sizeof tag - 1;
    const char *p = s;
    size_t left = n;
    while (s && left > tl) {
        const char *hit = memchr(p, '[', left - tl);
        if (!hit)
            return 0;
        if (memcmp(hit, tag, tl) != 0) {
            left -= (size_t)(hit + 1 - p);
            p = hit + 1;
            continue;
        }
        const char *q = hit + tl;
        const char *end = s + n;
        size_t len = 0;
        char name[CG_INTENT_NAME_MAX];
        while (q + len < end && len < CG_INTENT_NAME_MAX - 1 && q[len] != ']')
            name[len] = q[len], len++;
        if (q + len < end && q[len] == ']' && len > 0) {
            name[len] = '\0';
            if (valid_intent_name(name, out))
                return 1;
        }
        left -= (size_t)(hit + 1 - p);
        p = hit + 1;
    }
    return 0;
}

/* 1 when the lower-cased literal lit[0..m) occurs in p[0..n), ASCII
 * letters in any case. */
static int has_literal(const uint8_t *p, size_t n, const char *lit, size_t m) {
    const uint8_t *lc = lc_table();
    uint8_t f = (uint8_t)lit[0], F = f >= 'a' && f <= 'z' ? (uint8_t)(f - 32) : f;
    for (size_t i = 0; i + m <= n; i++) {
        if (p[i] != f && p[i] != F)
            continue;
        size_t k = 1;
        while (k < m && lc[p[i + k]] == (uint8_t)lit[k])
            k++;
        if (k == m)
            return 1;
    }
    return 0;
}

/* Adds each intent's regex matches to hits[]. A regex whose literal is not
 * in the window is not run. The window is copied to a NUL-terminated stack
 * buffer (only when some regex is run): regexec needs a C string (the
 * request text is not one), so a NUL byte in the text ends the window
 * early. */
static __attribute__((noinline)) void regex_pass(const cg_classifier *c, const uint8_t *p, size_t n,
                                                 int *hits) {
    char buf[REGEX_WINDOW_MAX + 1];
    int copied = 0;
    if (n > REGEX_WINDOW_MAX)
        n = REGEX_WINDOW_MAX;
    for (size_t i = 0; i < c->n_intents; i++)
        for (size_t j = 0; j < c->intents[i].n_re; j++) {
            const rx *x = &c->intents[i].re[j];
            if (x->lit_len && !has_literal(p, n, x->lit, x->lit_len))
                continue;
            if (!copied) {
                memcpy(buf, p, n);
                buf[n] = '\0';
                copied = 1;
            }
            if (regexec(&x->re, buf, 0, NULL, 0) == 0)
                hits[i]++;
        }
}

/* (float)log1p(v) of a count, from the table when it is small. */
static float lg(const cg_classifier *c, uint32_t v) {
    return (float)(v < LOG_TABLE ? c->log1p_tab[v] : log1p((double)v));
}

/* The start of the tail window: at least `want` bytes before the end, moved
 * forward to the first byte after a space within 64 bytes (so no word is
 * cut in two), else to a UTF-8 character start. */
static size_t tail_start(const uint8_t *p, size_t n, size_t want) {
    size_t s = n - want;
    for (size_t i = s; i < n && i < s + 64; i++)
        if (p[i] == ' ' || p[i] == '\n' || p[i] == '\t' || p[i] == '\r')
            return i + 1;
    while (s < n && (p[s] & 0xC0) == 0x80)
        s++;
    return s;
}

/* The end of the head window: cut back to a UTF-8 character start. */
static size_t head_end(const uint8_t *p, size_t want) {
    while (want > 0 && (p[want] & 0xC0) == 0x80)
        want--;
    return want;
}

int cg_classify_keywords(const cg_classifier *c, const char *text, size_t n, cg_kw_hits *out) {
    if (!out)
        return -1;
    memset(out, 0, sizeof *out);
    if (!c || (!text && n))
        return -1;
    counts k;
    memset(&k, 0, sizeof k);
    scan(c, (const uint8_t *)(text ? text : ""), n, 1, &k);
    memcpy(out->list, k.list, sizeof out->list);
    for (size_t i = 0; i < c->n_intents; i++)
        out->intent[i] = k.intent[i];
    return 0;
}

/* What the scan and the intent rules found, for the tier rules and the
 * features (cg_classify) or for a verdict that may stop at the intent. */
typedef struct judged {
    counts k;
    const uint8_t *p;
    size_t len;  /* user-text bytes given */
    size_t full; /* the whole text's length */
    size_t n;    /* bytes scanned */
    int truncated;
    int rule_ix;     /* the intent the keyword and regex rules found, -1 none */
    int explicit_ix; /* the header's or tag's intent when configured, else -1 */
    cg_intent_source source;
    char intent[CG_INTENT_NAME_MAX]; /* NUL-padded */
} judged;

/* Counts the user text: all of it, or the head and tail windows of a long
 * one (word and line counts then scaled up to the whole length). */
static void count_text(const cg_classifier *c, const cg_class_input *in, judged *j) {
    const cg_classify_cfg *cfg = &c->cfg;
    size_t len = in->user ? in->user_len : 0;
    const uint8_t *p = (const uint8_t *)(in->user ? in->user : "");
    j->p = p;
    j->len = len;
    j->full = in->user_full_len > len ? in->user_full_len : len;
    j->n = len;
    j->truncated = 0;
    memset(&j->k, 0, sizeof j->k);
    if (j->full <= cfg->scan_max_bytes && len <= cfg->scan_max_bytes) {
        scan(c, p, len, 1, &j->k);
        return;
    }
    /* a long prompt: its head and its tail (the instruction is often at
     * one end, context in the middle); sizes grow in proportion */
    j->truncated = 1;
    size_t half = cfg->scan_max_bytes / 2, he = len, ts = len;
    if (len > cfg->scan_max_bytes) {
        he = head_end(p, half);
        ts = tail_start(p, len, cfg->scan_max_bytes - half);
    }
    scan(c, p, he, 1, &j->k);
    counts t;
    memset(&t, 0, sizeof t);
    if (ts < len)
        scan(c, p + ts, len - ts, p[ts - 1] == '\n', &t);
    add_counts(&j->k, &t, c->n_intents);
    j->n = he + (len - ts);
    double scale = j->n ? (double)j->full / (double)j->n : 1.0;
    j->k.words = scaled(j->k.words, scale);
    j->k.lines = scaled(j->k.lines, scale);
}

/* Intent: header, then system tag, then rules. Reasons go to why (NULL:
 * none are kept). */
static void judge_intent(const cg_classifier *c, const cg_class_input *in, judged *j,
                         cg_class_result *why) {
    const cg_classify_cfg *cfg = &c->cfg;
    count_text(c, in, j);
    memset(j->intent, 0, sizeof j->intent);
    j->source = CG_INTENT_NONE;
    j->rule_ix = -1;
    if (in->header_intent && in->header_intent[0]) {
        if (valid_intent_name(in->header_intent, j->intent)) {
            j->source = CG_INTENT_HEADER;
            reason(why, "intent:header");
        } else {
            reason(why, "intent:header_invalid");
        }
    }
    if (j->source == CG_INTENT_NONE && system_tag(in->system, in->system_len, j->intent)) {
        j->source = CG_INTENT_TAG;
        reason(why, "intent:tag");
    }
    {
        int hits[MAX_INTENTS], best = 0;
        for (size_t i = 0; i < c->n_intents; i++)
            hits[i] = j->k.intent[i];
        if (c->n_regex)
            regex_pass(c, j->p, j->len < cfg->regex_max_bytes ? j->len : cfg->regex_max_bytes,
                       hits);
        for (size_t i = 0; i < c->n_intents; i++)
            if (hits[i] > best)
                best = hits[i], j->rule_ix = (int)i;
    }
    if (j->source == CG_INTENT_NONE && j->rule_ix >= 0) {
        memcpy(j->intent, c->intents[j->rule_ix].name, sizeof j->intent); /* NUL-padded */
        j->source = CG_INTENT_RULE;
        reason(why, "intent:rule");
    }
    j->explicit_ix = j->source == CG_INTENT_HEADER || j->source == CG_INTENT_TAG
                         ? find_intent(c, j->intent)
                         : -1;
}

/* Flags, score, tier and their reasons into out (whose intent reasons, if
 * any, are already there). */
static void judge_tier(const cg_classifier *c, const cg_class_input *in, const judged *j,
                       cg_class_result *out) {
    const cg_classify_cfg *cfg = &c->cfg;
    const counts *k = &j->k;
    int rule_ix = j->rule_ix, explicit_ix = j->explicit_ix;
    /* a simple intent found by the rules counts even when a header or tag named an
     * intent; a known explicit intent's tier overrides the result below anyway */
    int rule_simple = rule_ix >= 0 && c->intents[rule_ix].simple;

    /* Flags. */
    uint32_t words = k->words;
    int code = k->list[L_CODE] > 0 || k->code_lines >= 3;
    int math = k->list[L_MATH] > 0 || k->math_ops >= 2;
    int multistep = k->list[L_MULTISTEP] > 0 || k->numbered >= 3;
    int reasoning = k->list[L_REASONING] > 0;
    int long_in = words > (uint32_t)cfg->complex_min_words;
    int complex = k->list[L_COMPLEX] > 0 || long_in;
    int long_out = k->list[L_LONGOUT] > 0 || (cfg->long_output_tokens > 0 &&
                                              in->max_output_tokens >= cfg->long_output_tokens);
    int short_out = in->max_output_tokens > 0 && in->max_output_tokens <= cfg->short_output_tokens;
    int many_turns = cfg->many_turns > 0 && in->turns >= cfg->many_turns;
    int simple = (k->list[L_SIMPLE] > 0 || rule_simple) &&
                 words < (uint32_t)cfg->simple_max_words && !complex && !code;
    out->flags |= (simple ? CG_CF_SIMPLE : 0) | (complex ? CG_CF_COMPLEX : 0) |
                  (code ? CG_CF_CODE : 0) | (math ? CG_CF_MATH : 0) |
                  (multistep ? CG_CF_MULTISTEP : 0) | (reasoning ? CG_CF_REASONING : 0) |
                  (long_out ? CG_CF_LONG_OUTPUT : 0) | (short_out ? CG_CF_SHORT_OUTPUT : 0) |
                  (long_in ? CG_CF_LONG_INPUT : 0) | (many_turns ? CG_CF_MANY_TURNS : 0) |
                  (k->bad_utf8 ? CG_CF_BAD_UTF8 : 0) | (j->truncated ? CG_CF_TRUNCATED : 0);
    if (j->n > 0 && k->hangul_bytes * 5 >= j->n)
        out->flags |= CG_CF_KOREAN;

    /* Complexity score: a logistic squash of additive evidence. */
    double len_term =
        ((words < LOG_TABLE ? c->log1p_tab[words] : log1p((double)words)) - log(10.0)) /
        (log(300.0) - log(10.0));
    len_term = len_term < 0 ? 0 : len_term > 1 ? 1 : len_term;
    double pts = -0.2 + 1.0 * len_term + (k->list[L_COMPLEX] > 0 ? 1.0 : 0) + (code ? 0.8 : 0) +
                 (math ? 0.6 : 0) + (multistep ? 0.7 : 0) + (reasoning ? 1.0 : 0) +
                 (long_out ? 0.6 : 0) - (short_out ? 0.6 : 0) - (simple ? 1.0 : 0) +
                 (many_turns ? 0.3 : 0);
    out->score = (float)(1.0 / (1.0 + exp(-2.0 * pts)));

    /* Tier rules, in order; see docs/tiering.md. */
    int tier = out->score < cfg->small_below  ? CG_TIER_SMALL
               : out->score < cfg->large_from ? CG_TIER_MEDIUM
                                              : CG_TIER_LARGE;
    if (complex) {
        if (tier < CG_TIER_LARGE)
            tier = CG_TIER_LARGE;
        if (k->list[L_COMPLEX] > 0)
            reason(out, "complex_kw");
        if (long_in)
            reason(out, "long_input");
    }
    if (code) {
        if (tier < CG_TIER_MEDIUM)
            tier = CG_TIER_MEDIUM;
        reason(out, "code");
    }
    if (math)
        reason(out, "math");
    if (multistep)
        reason(out, "multistep");
    if (long_out) {
        if (tier < CG_TIER_MEDIUM)
            tier = CG_TIER_MEDIUM;
        reason(out, "long_output");
    }
    if (short_out)
        reason(out, "short_output");
    if (many_turns)
        reason(out, "many_turns");
    if (reasoning && (math || multistep || out->score >= cfg->large_from)) {
        tier = CG_TIER_REASONING;
        reason(out, "reasoning");
    }
    if (simple) {
        tier = CG_TIER_SMALL;
        reason(out, "simple");
    }
    if (explicit_ix >= 0 && c->intents[explicit_ix].tier != CG_TIER_NONE) {
        tier = c->intents[explicit_ix].tier;
        reason(out, "intent_tier");
    } else if (j->source == CG_INTENT_RULE && !c->intents[rule_ix].simple &&
               c->intents[rule_ix].tier != CG_TIER_NONE && tier < c->intents[rule_ix].tier) {
        tier = c->intents[rule_ix].tier;
        reason(out, "intent_floor");
    }
    if (j->truncated)
        reason(out, "truncated");
    out->tier = tier;
    out->words = words;
    out->bytes = (uint32_t)j->n;
}

/* The hand features (out->score and out->flags' long output set). */
static void features(const cg_classifier *c, const cg_class_input *in, const judged *j,
                     cg_class_result *out) {
    const counts *k = &j->k;
    uint32_t words = k->words;
    size_t full = j->full;
    int long_out = (out->flags & CG_CF_LONG_OUTPUT) != 0;
    double nb = j->n ? (double)j->n : 1.0;
    float *f = out->feat;
    f[CG_FEAT_LOG_WORDS] = lg(c, words);
    f[CG_FEAT_LOG_BYTES] = lg(c, full < UINT32_MAX ? (uint32_t)full : UINT32_MAX);
    f[CG_FEAT_DIGIT_FRAC] = (float)(k->digits / nb);
    f[CG_FEAT_NUMBERS] = lg(c, k->numbers);
    f[CG_FEAT_MATH] = lg(c, k->list[L_MATH] + k->math_ops);
    f[CG_FEAT_CODE] = lg(c, k->list[L_CODE] + k->code_lines);
    f[CG_FEAT_MULTISTEP] = lg(c, k->list[L_MULTISTEP] + k->numbered);
    f[CG_FEAT_SIMPLE_KW] = lg(c, k->list[L_SIMPLE]);
    f[CG_FEAT_COMPLEX_KW] = lg(c, k->list[L_COMPLEX]);
    f[CG_FEAT_REASONING_KW] = lg(c, k->list[L_REASONING]);
    f[CG_FEAT_QUESTIONS] = lg(c, k->questions);
    f[CG_FEAT_LINES] = lg(c, k->lines);
    f[CG_FEAT_HANGUL_FRAC] = (float)(k->hangul_bytes / nb);
    f[CG_FEAT_OPTIONS] = lg(c, k->options);
    f[CG_FEAT_LONG_OUTPUT] = lg(c, k->list[L_LONGOUT] + (long_out ? 1 : 0));
    f[CG_FEAT_TURNS] = lg(c, in->turns > 0 ? (uint32_t)in->turns : 0);
    f[CG_FEAT_SCORE] = out->score;
}

int cg_classify(const cg_classifier *c, const cg_class_input *in, cg_class_result *out) {
    if (!out)
        return -1;
    memset(out, 0, sizeof *out);
    out->tier = CG_TIER_MEDIUM;
    if (!c || !in)
        return -1;
    judged j;
    judge_intent(c, in, &j, out);
    memcpy(out->intent, j.intent, sizeof out->intent);
    out->intent_source = j.source;
    judge_tier(c, in, &j, out);
    features(c, in, &j, out);
    return 0;
}

_Static_assert(sizeof(judged) <= sizeof(cg_class_state), "cg_class_state holds a judged");

int cg_classify_begin(const cg_classifier *c, const cg_class_input *in, cg_class_state *st,
                      char intent[CG_INTENT_NAME_MAX]) {
    if (!c || !in || !st || !intent)
        return -1;
    judged j; /* copied in and out of the caller's bytes: no type punning */
    judge_intent(c, in, &j, NULL);
    memcpy(st->opaque, &j, sizeof j);
    memcpy(intent, j.intent, CG_INTENT_NAME_MAX);
    return 0;
}

int cg_classify_finish(const cg_classifier *c, const cg_class_input *in, const cg_class_state *st,
                       int *tier, float feat[CG_CLASS_NFEAT]) {
    if (!c || !in || !st || !tier)
        return -1;
    judged jv;
    memcpy(&jv, st->opaque, sizeof jv);
    const judged *j = &jv;
    cg_class_result res;
    memset(&res, 0, sizeof res);
    judge_tier(c, in, j, &res);
    *tier = res.tier;
    if (feat) {
        features(c, in, j, &res);
        memcpy(feat, res.feat, sizeof res.feat);
    }
    return 0;
}

size_t cg_class_result_note(const cg_class_result *r, char *buf, size_t cap) {
    if (!buf || cap == 0)
        return 0;
    buf[0] = '\0';
    if (!r)
        return 0;
    size_t len = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (len < cap) {                                                                           \
            int w_ = snprintf(buf + len, cap - len, __VA_ARGS__);                                  \
            len = w_ < 0 ? len : len + (size_t)w_ >= cap ? cap - 1 : len + (size_t)w_;             \
        }                                                                                          \
    } while (0)
    PUT("tier=%s score=%.2f", cg_tier_name(r->tier), (double)r->score);
    if (r->intent[0])
        PUT(" intent=%s(%s)", r->intent, cg_intent_source_name(r->intent_source));
    for (size_t i = 0; i < r->n_reasons; i++)
        PUT("%s%s", i ? "," : " why=", r->reasons[i]);
#undef PUT
    return len;
}
