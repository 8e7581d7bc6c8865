/* classify: request-time intent and complexity classification for tiering.
 *
 * Owns: the rule-based classifier that runs on the request path from the
 * prompt alone. It finds the request's intent (an explicit header intent
 * wins, then a system-prompt tag "[intent:NAME]", then keyword and regex
 * rules per intent, Korean and English) and its complexity (length, the
 * seeds' simple/complex keyword lists, code, math, multi-step and reasoning
 * markers, requested output length, turns), and suggests a tier (small /
 * medium / large / reasoning) with a score in [0,1], flags and short reason
 * strings for the ledger note. It also exports a fixed vector of hand
 * features that the learned router (learned.h) consumes.
 *
 * Defaults are built in (cg_classify_cfg_default); every list and threshold
 * can be overridden through cg_classify_cfg, which the classifier copies at
 * construction, compiling every keyword list into one index and every
 * regex with a literal prefilter. After construction the classifier is
 * read-only: cg_classify is thread-safe, allocates nothing (unless config
 * regexes are set, which glibc's regexec may allocate for; the defaults have
 * none) and reads at most scan_max_bytes of the user text: all of a text up
 * to that size, else its first and last halves of it (counts of words and
 * lines are then scaled up to the whole length). Input is arbitrary bytes:
 * invalid UTF-8 is counted, never decoded past the buffer.
 */
#ifndef CG_ROUTE_CLASSIFY_H
#define CG_ROUTE_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CG_TIER_SMALL = 0,
    CG_TIER_MEDIUM = 1,
    CG_TIER_LARGE = 2,
    CG_TIER_REASONING = 3,
} cg_tier;
#define CG_TIER_COUNT 4
#define CG_TIER_NONE (-1) /* in cg_intent_rule.tier: the intent has no tier opinion */

const char *cg_tier_name(int tier); /* "small", ...; "none" for anything else */
/* 0 and *out set, or -1 for an unknown name. */
int cg_tier_parse(const char *s, int *out);

#define CG_INTENT_NAME_MAX 32 /* including the NUL: names are 1..31 chars [a-z0-9_.-] */

typedef struct cg_intent_rule {
    const char *name;
    int tier;   /* cg_tier, or CG_TIER_NONE */
    int simple; /* 1: a "simple" intent: small unless the prompt is complex */
    const char *const *keywords;
    size_t n_keywords;
    /* POSIX extended, case-insensitive (ASCII: the process keeps the C
     * locale); see regex_max_bytes. A regex runs only when the text holds
     * its longest sure literal (cg_regex_literal), if it has one. */
    const char *const *regexes;
    size_t n_regexes;
} cg_intent_rule;

/* Keyword matching: ASCII letters case-insensitively; a keyword that starts
 * (ends) with an ASCII letter or digit only matches at a word start (end);
 * other keywords (Hangul, punctuation) match as plain byte substrings, as in
 * the seeds. Every keyword must be 2..63 bytes. */
typedef struct cg_classify_cfg {
    const cg_intent_rule *intents;
    size_t n_intents;
    const char *const *simple_keywords; /* seed 001: 번역해 요약해 정의해 뭐야 알려줘 (+ English) */
    size_t n_simple_keywords;
    const char *const
        *complex_keywords; /* seed 001: 분석해 설계해 비교해서 왜 어떻게 최적화 (+ English) */
    size_t n_complex_keywords;
    const char *const *multistep_keywords;
    size_t n_multistep_keywords;
    const char *const *reasoning_keywords;
    size_t n_reasoning_keywords;
    const char *const *code_keywords;
    size_t n_code_keywords;
    const char *const *math_keywords;
    size_t n_math_keywords;
    const char *const *long_output_keywords;
    size_t n_long_output_keywords;
    int simple_max_words;        /* simple only if words < this (seed: 30) */
    int complex_min_words;       /* complex if words > this (seed: 100) */
    int64_t long_output_tokens;  /* max_output_tokens >= this: long output (2000) */
    int64_t short_output_tokens; /* 0 < max_output_tokens <= this: short output (64) */
    int many_turns;              /* turns >= this adds complexity (8) */
    float small_below;           /* score < this: small (0.30) */
    float large_from;            /* score >= this: large (0.65) */
    size_t scan_max_bytes;       /* user-text bytes scanned (8192): head and tail halves */
    size_t regex_max_bytes;      /* user-text bytes given to intent regexes (4096, <= 16384) */
} cg_classify_cfg;

/* Fills cfg with the built-in lists (static storage) and thresholds. */
void cg_classify_cfg_default(cg_classify_cfg *cfg);

typedef enum {
    CG_INTENT_NONE = 0,
    CG_INTENT_HEADER = 1, /* cg_class_input.header_intent */
    CG_INTENT_TAG = 2,    /* "[intent:NAME]" in the system text */
    CG_INTENT_RULE = 3,   /* keyword / regex rules on the user text */
} cg_intent_source;
const char *cg_intent_source_name(cg_intent_source s); /* "none" "header" "tag" "rule" */

enum {
    CG_CF_SIMPLE = 1u << 0,       /* seed rule: simple keyword/intent, short, not complex */
    CG_CF_COMPLEX = 1u << 1,      /* seed rule: complex keyword or long */
    CG_CF_CODE = 1u << 2,         /* code in or asked for */
    CG_CF_MATH = 1u << 3,         /* math notation or vocabulary */
    CG_CF_MULTISTEP = 1u << 4,    /* multi-step markers, numbered steps */
    CG_CF_REASONING = 1u << 5,    /* proof / rigorous reasoning markers */
    CG_CF_LONG_OUTPUT = 1u << 6,  /* long answer requested (max tokens or words) */
    CG_CF_SHORT_OUTPUT = 1u << 7, /* small max_output_tokens */
    CG_CF_LONG_INPUT = 1u << 8,   /* words > complex_min_words */
    CG_CF_KOREAN = 1u << 9,       /* Hangul is at least 20% of the bytes */
    CG_CF_TRUNCATED = 1u << 10,   /* text longer than scan_max_bytes: head and tail read */
    CG_CF_BAD_UTF8 = 1u << 11,    /* invalid UTF-8 seen */
    CG_CF_MANY_TURNS = 1u << 12,
};

/* Hand features (all finite; log1p of counts unless noted). The names are
 * stable: learned model files record them and refuse a different set. */
enum {
    CG_FEAT_LOG_WORDS = 0,
    CG_FEAT_LOG_BYTES,
    CG_FEAT_DIGIT_FRAC, /* digits / bytes */
    CG_FEAT_NUMBERS,    /* digit runs */
    CG_FEAT_MATH,
    CG_FEAT_CODE,
    CG_FEAT_MULTISTEP,
    CG_FEAT_SIMPLE_KW,
    CG_FEAT_COMPLEX_KW,
    CG_FEAT_REASONING_KW,
    CG_FEAT_QUESTIONS, /* '?' and U+FF1F */
    CG_FEAT_LINES,
    CG_FEAT_HANGUL_FRAC, /* Hangul bytes / bytes */
    CG_FEAT_OPTIONS,     /* lines starting "A." / "B)" ...: multiple choice */
    CG_FEAT_LONG_OUTPUT,
    CG_FEAT_TURNS,
    CG_FEAT_SCORE, /* the classifier's complexity score */
    CG_CLASS_NFEAT
};
const char *cg_class_feature_name(size_t i); /* NULL past the end */

#define CG_CLASS_MAX_REASONS 12

typedef struct cg_class_result {
    int tier;                        /* cg_tier */
    float score;                     /* complexity in [0,1] */
    char intent[CG_INTENT_NAME_MAX]; /* "" when none */
    cg_intent_source intent_source;
    uint32_t flags; /* CG_CF_* */
    uint32_t words; /* whitespace-separated words (Python's split()) */
    uint32_t bytes; /* user-text bytes scanned (CG_FEAT_LOG_BYTES has the whole length) */
    float feat[CG_CLASS_NFEAT];
    const char *reasons[CG_CLASS_MAX_REASONS]; /* static strings, never freed */
    size_t n_reasons;
} cg_class_result;

typedef struct cg_class_input {
    const char *user; /* the last user message (any bytes; need not be NUL-terminated) */
    size_t user_len;
    const char *system; /* system text, or NULL */
    size_t system_len;
    const char *header_intent; /* NUL-terminated explicit intent (x-costgate-intent), or NULL */
    int64_t max_output_tokens; /* requested max tokens; 0 = not given */
    int turns;                 /* messages in the conversation; 0 = unknown */
    /* when user holds only the first and last halves of a longer text: the
     * whole text's length (0 = user is the whole text) */
    size_t user_full_len;
} cg_class_input;

typedef struct cg_classifier cg_classifier;

/* Copies and validates cfg (NULL = defaults). NULL with a message in err
 * for a bad keyword, intent name, tier, regex or threshold. */
cg_classifier *cg_classifier_new(const cg_classify_cfg *cfg, char *err, size_t errcap);
void cg_classifier_free(cg_classifier *c);
/* A number no other classifier of this process has (1, 2, ...; 0 for NULL):
 * names the classifier in memos of its verdicts (class_memo.h). */
uint64_t cg_classifier_serial(const cg_classifier *c);
/* Classifies one request. 0, or -1 on NULL arguments (out is then zeroed). */
int cg_classify(const cg_classifier *c, const cg_class_input *in, cg_class_result *out);
/* cg_classify in two steps, for a caller that may not need the tier: the
 * scan and the intent first, then, only when asked for, the tier and the
 * hand features from what the first step found (no second scan). No
 * reasons and no flags. The intent and the tier equal cg_classify's
 * result.intent and result.tier for the same input, the features its
 * result.feat. The state is the caller's storage; `in` and its texts must
 * not change between the two calls. */
typedef struct cg_class_state {
    unsigned char opaque[384]; /* classify.c copies its scan state in and out */
} cg_class_state;
/* The scan and the intent rules; intent as cg_class_result.intent
 * (NUL-padded). 0, or -1 on NULL arguments. */
int cg_classify_begin(const cg_classifier *c, const cg_class_input *in, cg_class_state *st,
                      char intent[CG_INTENT_NAME_MAX]);
/* The tier (and, when feat is not NULL, the hand features) of the input
 * cg_classify_begin looked at. 0, or -1 on NULL arguments. */
int cg_classify_finish(const cg_classifier *c, const cg_class_input *in, const cg_class_state *st,
                       int *tier, float feat[CG_CLASS_NFEAT]);
/* "tier=large score=0.72 intent=translate(header) why=complex_kw,long_input"
 * into buf (always NUL-terminated, truncated to cap); returns strlen. */
size_t cg_class_result_note(const cg_class_result *r, char *buf, size_t cap);

/* Keyword hits in a whole text (no scan cap), as cg_classify counts them: by
 * list in the order simple, complex, multistep, reasoning, code, math,
 * long_output (cg_classify_cfg's order) and by intent (config order).
 * Saturating counts. For tests and diagnostics. 0, or -1 on bad arguments. */
#define CG_KW_LISTS 7
typedef struct cg_kw_hits {
    uint16_t list[CG_KW_LISTS];
    uint16_t intent[64];
} cg_kw_hits;
int cg_classify_keywords(const cg_classifier *c, const char *text, size_t n, cg_kw_hits *out);

/* Self-check for tests: counts `text` with the 64-byte block scan (bit
 * masks; SSE2 builds, which use it for texts of 64 bytes and more; other
 * builds: the scan they use) at any length and with the portable
 * byte-by-byte scan, and compares every feature and keyword count. line0:
 * text[0] starts a line. 0 when they agree; -1 with the first count that
 * differs in err. */
int cg_classify_scan_selfcheck(const cg_classifier *c, const char *text, size_t n, int line0,
                               char *err, size_t errcap);

/* The prefilter of a regex: the longest run of ASCII literal characters
 * (lower-cased, 2..32 of them) that every match of the POSIX extended regex
 * `re` must contain, found conservatively (only at the top level, none with
 * an alternation anywhere, none across anything it does not know). Into
 * out[cap] (NUL-terminated); returns its length, 0 when there is none. */
size_t cg_regex_literal(const char *re, char *out, size_t cap);

#endif
