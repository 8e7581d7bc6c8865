/* gate: the semantic cache's second gate, applied after similarity.
 *
 * Owns: the pure check that decides whether an answer cached for one query
 * may be served for another query the embedder found similar. Cosine
 * similarity cannot tell "convert 10 USD to EUR" from "convert 100 USD to
 * EUR", or a question from its negation (a reversal scores 0.83-0.9997 on
 * every encoder in zilliztech/GPTCache#694), so the gate compares the two
 * texts' surface facts that change the answer: numbers, negation, quoted
 * strings, and the further rules below. Each rule is a bit; the default set
 * is the one the evaluation (`costgate eval semantic`, docs/semantic-cache.md)
 * measured to raise precision without costing much hit rate.
 *
 * Files: gate.c (rules, verdict, names), gate_extract.c (per-text
 * features), gate_text.c (UTF-8, normalisation), gate_words.c (word lists);
 * gate_internal.h is shared between them only.
 *
 * The check reads at most CG_GATE_SCAN_MAX bytes of each text, works on any
 * bytes (invalid UTF-8 separates words and never matches a pattern), uses
 * only the stack (about 20 KB; no allocation) and no mutable global state
 * (a hash index over its word list is built once, under pthread_once): any
 * number of threads may call it at once.
 */
#ifndef CG_CACHE_GATE_H
#define CG_CACHE_GATE_H

#include <stddef.h>

/* Bytes of each text the gate reads (cut back to a UTF-8 boundary). */
#define CG_GATE_SCAN_MAX 4096

/* Why a pair failed; CG_GATE_PASS when it passed. The value of each rule is
 * its bit number in a rule mask (CG_GATE_RULE). */
typedef enum {
    CG_GATE_PASS = 0,
    /* longer than CG_GATE_SCAN_MAX and the texts differ: the part the gate
     * (and the embedder, which reads 128 tokens) cannot see may differ */
    CG_GATE_LENGTH,
    /* the multisets of numbers differ ("1,000" = "1000", "2.50" = "2.5",
     * "3rd" = "3", "five" = "5"; "one"/"first".."tenth" only stand in for a
     * digit of the other text, they are never required) */
    CG_GATE_NUMBERS,
    /* one text is negated and the other is not (English not/no/never/n't/
     * without/...; Korean 안/못/않/없/아니/-지 마) */
    CG_GATE_NEGATION,
    /* a quoted string ("..." '...' `...` “...” ‘...’ 「...」 『...』 «...»)
     * of one text does not occur in the other */
    CG_GATE_QUOTES,
    /* each text has a capitalised name the other lacks (Berlin vs Paris) */
    CG_GATE_ENTITIES,
    /* opposite poles of a direction pair (buy/sell, ascending/descending,
     * before/after, more/less, ...): one text has only one, the other only
     * the other */
    CG_GATE_DIRECTION,
    /* each text has a question word the other lacks, among why, when,
     * where, who */
    CG_GATE_QWORD,
    /* each text has a time reference the other lacks: yesterday /
     * today-now-latest / tomorrow, last / this / next period; or months, or
     * weekdays (a text without one agrees with any) */
    CG_GATE_TIME,
    /* each text has a unit or currency the other lacks (km vs miles,
     * $ vs EUR, days vs weeks) */
    CG_GATE_UNITS,
    /* each text has a code identifier, path or domain the other lacks
     * (snake_case, camelCase, a.b, docs.python.org) */
    CG_GATE_CODE,
    /* two words both texts share, as "x MARKER y" in one and "y MARKER x"
     * in the other (MARKER: to, into, from, than, ->, =>, →):
     * "Celsius to Fahrenheit" vs "Fahrenheit to Celsius" */
    CG_GATE_ORDER,
    /* a content word of one text (not a function word, number or negation;
     * plural and possessive endings dropped, "exercises" = "exercise") is
     * missing from the other: "restaurants in downtown Vancouver" vs
     * "restaurants in Vancouver" */
    CG_GATE_WORDS,
    /* two shared content words in the opposite order with the same relation
     * word (of, than, to, from, in, for, with, after, is, ...) between them
     * in both texts: "life after death" vs "death after life", "data
     * science graduates apply for psychology" vs "psychology graduates apply
     * for data science"; or exchanged around the same words, "x WORDS y" in
     * one text and "y WORDS x" in the other (1-4 words with a content word
     * and no and/or/vs/versus/between): "Poles dislike Russians" vs
     * "Russians dislike Poles" */
    CG_GATE_SWAP,
    /* either text points at something it does not contain: this, these,
     * those (not of a time period: "this week") or "the following", with no
     * colon, new line, quote or code after it: "What is the output of this
     * program?" */
    CG_GATE_DEIXIS,
    /* one text is about the asker (me, myself) and the other about someone
     * else (someone, somebody, anyone, anybody, others), neither having the
     * other's: "How do I motivate myself ..." vs "How do I motivate
     * someone ..." */
    CG_GATE_PERSON,
    /* two content words both texts use, one more often in the first text
     * and the other more often in the second: a mention moved from one role
     * to another with the words kept ("what strategies can the Wizards use
     * in a war between the Muggles and Wizards" vs "... can the Muggles
     * use ..."; "a neutrino and an electron neutrino" vs "an electron and
     * an electron neutrino") */
    CG_GATE_MENTIONS,
    CG_GATE_N
} cg_gate_reason;

#define CG_GATE_RULE(r) (1u << (unsigned)(r))
#define CG_GATE_ALL_RULES (((1u << CG_GATE_N) - 1u) & ~1u)
/* The rules on by default: every rule but qword, which rejected more
 * duplicates than non-duplicates on QQP. Each of the others raised
 * precision on QQP or LangCache at a small cost in hit rate, except length,
 * a guard the evaluation texts never reach; words, swap, deixis, person and
 * mentions trade
 * hit rate for precision at the top of the similarity scale, where the
 * default threshold is (docs/semantic-cache.md). */
#define CG_GATE_DEFAULT_RULES (CG_GATE_ALL_RULES & ~CG_GATE_RULE(CG_GATE_QWORD))

/* Variants, for the evaluation only (bits above the rules). */
#define CG_GATE_V_DIGITS_ONLY (1u << 24)     /* numbers: ignore number words */
#define CG_GATE_V_ENTITIES_STRICT (1u << 25) /* entities: one missing name fails */

typedef struct cg_gate_result {
    cg_gate_reason reason;
    /* what differed, for the audit log, e.g. `number "100" only in the new
     * query`; "" on a pass */
    char detail[96];
} cg_gate_result;

/* Checks the new query `asked` against the cached query `cached` under the
 * rules in mask `rules` (CG_GATE_DEFAULT_RULES, or CG_GATE_RULE bits and
 * variants). Returns CG_GATE_PASS or the first rule that failed, in enum
 * order; fills *out (may be NULL). Either text may be NULL when its length
 * is 0. Symmetric: swapping the texts gives the same verdict. */
cg_gate_reason cg_gate_check(const char *asked, size_t asked_len, const char *cached,
                             size_t cached_len, unsigned rules, cg_gate_result *out);

/* As cg_gate_check, and in *fails (may be NULL) the mask of every rule
 * that fails on its own, variants ignored: bit CG_GATE_RULE(r) set when
 * cg_gate_check(..., CG_GATE_RULE(r), NULL) != CG_GATE_PASS, for each rule
 * r whether in `rules` or not. Both texts are read once, so this costs
 * about what one cg_gate_check costs; the learned verifier (verifier.h)
 * uses the mask as features. */
cg_gate_reason cg_gate_check_all(const char *asked, size_t asked_len, const char *cached,
                                 size_t cached_len, unsigned rules, cg_gate_result *out,
                                 unsigned *fails);

/* "pass", "length", "numbers", "negation", "quotes", "entities",
 * "direction", "qword", "time", "units", "code", "order", "words", "swap",
 * "deixis", "person", "mentions"; "?" out of range. */
const char *cg_gate_reason_name(cg_gate_reason r);

/* Parses a comma list of rule names, or "default", "all", "none", into a
 * mask. 0, or -1 on an unknown name. */
int cg_gate_rules_parse(const char *list, unsigned *rules);

#endif
