/* gate_internal: what the second gate's files share (see gate.h).
 *
 * Owns: the per-text feature record (feat) that extraction fills and the
 * rules compare, the dictionary entry shape and its word classes, and the
 * functions one gate file exports to another. Only src/cache/gate*.c include
 * it.
 */
#ifndef CG_CACHE_GATE_INTERNAL_H
#define CG_CACHE_GATE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "cache/gate.h"

#define NORM_CAP (CG_GATE_SCAN_MAX + 8)
#define MAX_NUMS 32
#define MAX_QUOTES 8
#define MAX_ENTS 24
#define MAX_CODES 16
#define MAX_CONTENT 64 /* content words kept for the order rule */
#define MAX_MARKS 32
/* order rule: at most this far apart (2 per word; see mark_between) */
#define ORDER_SPAN 6
#define WORD_MAX 48
/* words and swap rules: distinct content words kept per text (more: the
 * words rule cannot compare the texts and refuses) */
#define MAX_LEX 256
#define MAX_RELW 128 /* relation words kept per text (swap rule) */
#define MAX_SEQ 256  /* words kept in order per text (swap rule's frames) */
#define FRAME_MAX 4  /* swap rule: words between the exchanged ones */

typedef struct {
    uint16_t off, len;
} span;

typedef struct {
    uint64_t h; /* of the normalised value */
    span at;    /* in the normalised text, for the detail */
    uint8_t soft;
} num_t;

/* time classes */
enum { T_PAST_DAY = 1, T_PRESENT = 2, T_FUTURE_DAY = 4, T_PAST_PERIOD = 8, T_FUTURE_PERIOD = 16 };

typedef struct {
    int truncated;
    size_t n;
    char norm[NORM_CAP];
    uint8_t cap[NORM_CAP / 8 + 1];
    num_t num[MAX_NUMS];
    int nnum;
    int neg;
    span neg_at;
    span quote[MAX_QUOTES];
    int nquote;
    span ent[MAX_ENTS];
    int nent;
    int n_alpha_words, n_cap_words; /* not starting a sentence */
    uint64_t pole[2];
    unsigned qw;
    unsigned tclass, months, wdays;
    uint64_t units;
    span code[MAX_CODES];
    int ncode;
    /* order rule: content words (hash, position 2 * word index) and the
     * positions of direction markers (a marker word's own position, or
     * 2 * index - 1 for a symbol before word `index`) */
    uint64_t cw[MAX_CONTENT];
    int cw_pos[MAX_CONTENT];
    int ncw;
    int mark[MAX_MARKS];
    uint8_t mark_than[MAX_MARKS]; /* the marker is "than" */
    int nmark;
    /* words and swap rules: distinct content words (light stem's hash,
     * word index of the first occurrence, its span for the detail) */
    uint64_t lex[MAX_LEX];
    uint16_t lex_pos[MAX_LEX];
    span lex_at[MAX_LEX];
    int nlex, lex_over;
    /* swap rule: relation words (word index, id) in text order */
    uint16_t rel_pos[MAX_RELW];
    uint8_t rel_id[MAX_RELW];
    int nrel;
    /* deixis rule: this/these/those (not of a time period) or "the
     * following", with nothing after it that could be what it points at */
    int deixis;
    span deix_at;
    /* swap rule, exchanged words: every word in text order (light stem's
     * hash, its span, SQ_ flags), the first MAX_SEQ words */
    uint64_t seq[MAX_SEQ];
    span seq_at[MAX_SEQ];
    uint8_t seq_fl[MAX_SEQ];
    int nseq;
    int seq_over; /* more words than MAX_SEQ: the mentions rule cannot count */
    /* person rule: the text mentions the asker (me, myself) / someone else
     * (someone, somebody, anyone, anybody, others); first such word */
    int self_ref, other_ref;
    span self_at, other_at;
} feat;

enum { SQ_CONTENT = 1, SQ_SYMMETRIC = 2 }; /* seq_fl bits */

/* ------------------------------------------------------------------ */
/* Characters (gate_text.c)                                             */

enum { C_SPACE, C_PUNCT, C_WORD };

/* One UTF-8 character at s[0..n): its code point, or -1 (and *len 1) for
 * an invalid, overlong, surrogate or truncated sequence. */
int32_t gate_u8dec(const unsigned char *s, size_t n, size_t *len);
/* C_SPACE, C_PUNCT or C_WORD for a code point (-1: C_PUNCT). */
int gate_cp_class(int32_t cp);
/* Fills f->norm, f->n, f->cap and f->truncated from s[0..len). */
void gate_normalise(feat *f, const char *s, size_t len);

static inline int is_alnum(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
static inline int is_digit(int c) {
    return c >= '0' && c <= '9';
}
static inline int is_lower(int c) {
    return c >= 'a' && c <= 'z';
}
static inline int32_t cp_at(const feat *f, size_t i, size_t *len) {
    return gate_u8dec((const unsigned char *)f->norm + i, f->n - i, len);
}
static inline int is_cap(const feat *f, size_t i) {
    return (f->cap[i >> 3] >> (i & 7)) & 1;
}

/* ------------------------------------------------------------------ */
/* Dictionary (gate_words.c)                                            */

enum {
    K_NEG = 1,
    K_NUM,      /* hard number word, val = value */
    K_NUM_SOFT, /* stands in for a digit only */
    K_TENS,     /* twenty..ninety: hard, may take a unit word */
    K_POLE,     /* val = pair * 2 + pole */
    K_QW,       /* val = bit */
    K_TIME,     /* val = time class */
    K_REL,      /* val = the class a following period word gets */
    K_PERIOD,
    K_AGO,
    K_MONTH, /* val = month 0-11 */
    K_MARCH, /* "march": a month only when capitalised */
    K_WDAY,
    K_UNIT, /* val = unit bit */
};

typedef struct {
    const char *w;
    uint8_t len, kind, val;
} dword;

enum { QW_WHY = 1, QW_WHEN = 2, QW_WHERE = 4, QW_WHO = 8 };

/* Unit classes (bit numbers). */
enum {
    U_KM,
    U_MILE,
    U_METER,
    U_CM,
    U_MM,
    U_INCH,
    U_FOOT,
    U_KG,
    U_LB,
    U_GRAM,
    U_OZ,
    U_CELSIUS,
    U_FAHRENHEIT,
    U_USD,
    U_EUR,
    U_GBP,
    U_JPY,
    U_INR,
    U_CNY,
    U_KRW,
    U_BTC,
    U_SECOND,
    U_MINUTE,
    U_HOUR,
    U_DAY,
    U_WEEK,
    U_MONTH,
    U_YEAR,
    U_PERCENT,
    U_LITER,
    U_ML,
    U_GALLON,
    U_KB,
    U_MB,
    U_GB,
    U_TB,
    U_MPH,
    U_KMH,
    U_CALORIE,
    U_ACRE,
    U_HECTARE,
    U_GHZ,
    U_MHZ,
    U_KWH,
    U_N
};

enum { K_STOP = 100, K_MARK };

/* words rule: K_FUNC val bits. A function word (not compared), a relation
 * word of the swap rule (of, than, to, from, in, after, is, ...), whose id
 * is val >> 2 (at most 31). */
enum { K_FUNC = 110, K_DEIX };
enum { FW_FUNC = 1, FW_REL = 2 };

#define DICT_HITS 8 /* most entries one word has */

/* The word table, and the indexes in it of word w[0..n) (at most
 * DICT_HITS, in table order); the index is built once, under pthread_once. */
extern const dword gate_dict[];
int gate_dict_lookup(const char *w, size_t n, int *out);
/* Direction pair k ("buy/sell"), gate_npairs of them; unit class k. */
extern const size_t gate_npairs;
const char *gate_pair_name(size_t k);
const char *gate_unit_name(int k);
/* FNV-1a 64 of p[0..n). */
uint64_t gate_fnv(const char *p, size_t n);

/* ------------------------------------------------------------------ */
/* Extraction (gate_extract.c)                                          */

/* Normalises text[0..len) (NULL: empty) into f and extracts its features. */
void gate_extract(feat *f, const char *text, size_t len);

#endif
