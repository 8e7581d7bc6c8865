/* gate: the semantic cache's second gate (see gate.h).
 *
 * Owns: the per-text feature extraction (numbers, negation, quotes, names,
 * direction words, question words, time references, units, code tokens)
 * and the rule-by-rule comparison of two texts' features.
 *
 * Each text is first normalised into a stack buffer: at most
 * CG_GATE_SCAN_MAX bytes, cut at a UTF-8 boundary; ASCII lower-cased (a bit
 * per byte remembers what was upper case); whitespace runs collapsed to one
 * space (a newline if the run held one); curly quotes and primes folded to
 * ' and "; full-width ASCII (U+FF01-FF5E) folded to ASCII; each byte of an
 * invalid UTF-8 sequence replaced by 0x01, which separates words and occurs
 * in no pattern. Everything after that reads only the normalised text, so
 * all work is linear in CG_GATE_SCAN_MAX (the word dictionary is a short
 * hash table built once; string search is memmem).
 *
 * Word lists (lower case; a word is a run of letters, digits and non-ASCII
 * letters, with inner apostrophes):
 *   English negation: not no never none nobody nothing nowhere neither nor
 *     cannot without noone, any word ending in n't, and the apostrophe-less
 *     spellings dont doesnt didnt isnt arent wasnt werent cant wont wouldnt
 *     shouldnt couldnt havent hasnt hadnt aint mustnt neednt; except right
 *     after "or" (whether or not, yes or no), in "why or why not", and "no."
 *     (the abbreviation of number).
 *   Korean negation, by syllable so that common words are not caught by a
 *     substring (안녕 hello, 안전 safety, 제안 proposal, 주말 weekend, 가지마다
 *     every branch):
 *       않 or 없 anywhere in a word (they occur only in 않다 / 없다 forms);
 *       안 as a word of its own, or a word starting 안 + 되/돼/됐/될/해/했/할/
 *         함/좋/맞/들/와/먹 (안돼, 안해, 안좋아);
 *       못 starting a word (못 가요, 못해);
 *       a word starting 아니/아닌/아님/아냐 (아니다, 아닌데);
 *       -지 마/말/맙 (prohibition): a syllable 지 after another syllable,
 *         then 마 (end of word or 마세요/마라/마요/마십시오/마시오), 말 (말고/말아/
 *         말라/말자 or alone) or 맙 (맙시다), in one word or the next.
 *   Number words: zero two..twenty thirty..ninety (and twenty-five style
 *     compounds) count like digits; one, first, third..tenth only stand in
 *     for a digit the other text has ("one" is usually a pronoun).
 */
#include "cache/gate.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

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
} feat;

/* ------------------------------------------------------------------ */
/* UTF-8 and character classes                                          */

/* One UTF-8 character at s[0..n): its code point, or -1 (and *len 1) for
 * an invalid, overlong, surrogate or truncated sequence. */
static int32_t u8dec(const unsigned char *s, size_t n, size_t *len) {
    unsigned c = s[0];
    *len = 1;
    if (c < 0x80)
        return (int32_t)c;
    size_t k;
    uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) {
        k = 1, cp = c & 0x1Fu, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 2, cp = c & 0x0Fu, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 3, cp = c & 0x07u, min = 0x10000;
    } else {
        return -1;
    }
    if (k >= n)
        return -1;
    for (size_t i = 1; i <= k; i++) {
        if ((s[i] & 0xC0u) != 0x80u)
            return -1;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *len = k + 1;
    return (int32_t)cp;
}

enum { C_SPACE, C_PUNCT, C_WORD };

static int is_alnum(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
static int is_digit(int c) {
    return c >= '0' && c <= '9';
}
static int is_lower(int c) {
    return c >= 'a' && c <= 'z';
}

static int cp_class(int32_t cp) {
    if (cp < 0)
        return C_PUNCT;
    if (cp < 0x80) {
        if (is_alnum(cp))
            return C_WORD;
        if (cp == ' ' || (cp >= '\t' && cp <= '\r'))
            return C_SPACE;
        return C_PUNCT;
    }
    if (cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200B) || cp == 0x2028 ||
        cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF)
        return C_SPACE;
    if (cp <= 0xBF || cp == 0xD7 || cp == 0xF7 || (cp >= 0x2000 && cp <= 0x2BFF) ||
        (cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xFE30 && cp <= 0xFE4F) ||
        (cp >= 0xFF00 && cp <= 0xFF0F) || (cp >= 0xFF5B && cp <= 0xFF65) || cp >= 0x1F000)
        return C_PUNCT;
    return C_WORD;
}

static int32_t cp_at(const feat *f, size_t i, size_t *len) {
    return u8dec((const unsigned char *)f->norm + i, f->n - i, len);
}

static int is_cap(const feat *f, size_t i) {
    return (f->cap[i >> 3] >> (i & 7)) & 1;
}

/* ------------------------------------------------------------------ */
/* Normalisation                                                        */

static void normalise(feat *f, const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t cut = len;
    f->truncated = 0;
    if (cut > CG_GATE_SCAN_MAX) {
        f->truncated = 1;
        cut = CG_GATE_SCAN_MAX;
        while (cut > 0 && (u[cut] & 0xC0u) == 0x80u)
            cut--;
    }
    memset(f->cap, 0, sizeof f->cap);
    size_t o = 0;
    f->norm[o++] = ' ';
    int space = 1; /* the last byte written is a space or newline */
    for (size_t i = 0; i < cut;) {
        size_t l;
        int32_t cp = u8dec(u + i, cut - i, &l);
        i += l;
        if (cp >= 0xFF01 && cp <= 0xFF5E)
            cp -= 0xFEE0; /* full-width ASCII */
        if (cp < 0) {
            f->norm[o++] = '\x01';
            space = 0;
            continue;
        }
        if (cp_class(cp) == C_SPACE) {
            int nl = cp == '\n' || cp == '\r' || cp == 0x2028 || cp == 0x2029;
            if (!space)
                f->norm[o++] = nl ? '\n' : ' ';
            else if (nl)
                f->norm[o - 1] = '\n';
            space = 1;
            continue;
        }
        space = 0;
        if (cp < 0x80) {
            char c = (char)cp;
            if (c >= 'A' && c <= 'Z') {
                f->cap[o >> 3] |= (uint8_t)(1u << (o & 7));
                c = (char)(c - 'A' + 'a');
            }
            f->norm[o++] = c;
        } else if (cp == 0x2018 || cp == 0x2019 || cp == 0x201B || cp == 0x2032) {
            f->norm[o++] = '\'';
        } else if (cp == 0x201C || cp == 0x201D || cp == 0x201E || cp == 0x2033) {
            f->norm[o++] = '"';
        } else {
            memcpy(f->norm + o, s + i - l, l);
            o += l;
        }
    }
    if (!space)
        f->norm[o++] = ' ';
    f->norm[o] = '\0';
    f->n = o;
}

/* ------------------------------------------------------------------ */
/* Dictionary                                                           */

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

#define W(s, k, v)                                                                                 \
    { s, (uint8_t)(sizeof(s) - 1), k, v }

/* Direction pairs: pole 0 words | pole 1 words. */
static const char *const PAIR_NAMES[] = {
    "buy/sell",
    "ascending/descending",
    "before/after",
    "more/less",
    "increase/decrease",
    "max/min",
    "best/worst",
    "pros/cons",
    "gain/lose",
    "import/export",
    "upload/download",
    "encrypt/decrypt",
    "enable/disable",
    "add/remove",
    "male/female",
    "north/south",
    "east/west",
    "cheap/expensive",
    "formal/informal",
    "legal/illegal",
    "possible/impossible",
    "positive/negative",
    "true/false",
    "hot/cold",
    "rich/poor",
    "early/late",
    "old/young",
    "strong/weak",
    "high/low",
    "fast/slow",
    "easy/hard",
    "good/bad",
    "love/hate",
    "agree/disagree",
    "happy/sad",
    "start/stop",
    "send/receive",
    "push/pull",
    "input/output",
    "above/below",
    "inside/outside",
    "include/exclude",
    "accept/reject",
    "success/failure",
    "introvert/extrovert",
    "senior/junior",
    "plus/minus",
    "wet/dry",
    "win/lose",
    "open/closed",
};
#define NPAIRS (sizeof PAIR_NAMES / sizeof PAIR_NAMES[0])
#define P(s, pair, pole) W(s, K_POLE, (pair)*2 + (pole))

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
static const char *const UNIT_NAMES[U_N] = {
    "km",   "mile",    "meter",   "cm",     "mm",      "inch", "foot", "kg",   "lb",
    "gram", "oz",      "°C",      "°F",     "USD",     "EUR",  "GBP",  "JPY",  "INR",
    "CNY",  "KRW",     "BTC",     "second", "minute",  "hour", "day",  "week", "month",
    "year", "percent", "liter",   "ml",     "gallon",  "KB",   "MB",   "GB",   "TB",
    "mph",  "km/h",    "calorie", "acre",   "hectare", "GHz",  "MHz",  "kWh",
};

enum { K_STOP = 100, K_MARK };

static const dword DICT[] = {
    /* order rule: direction markers, and words never used as anchors */
    W("to", K_MARK, 0),
    W("into", K_MARK, 0),
    W("from", K_MARK, 0),
    W("than", K_MARK, 1),
    W("the", K_STOP, 0),
    W("and", K_STOP, 0),
    W("for", K_STOP, 0),
    W("are", K_STOP, 0),
    W("was", K_STOP, 0),
    W("were", K_STOP, 0),
    W("what", K_STOP, 0),
    W("how", K_STOP, 0),
    W("which", K_STOP, 0),
    W("with", K_STOP, 0),
    W("that", K_STOP, 0),
    W("can", K_STOP, 0),
    W("does", K_STOP, 0),
    W("did", K_STOP, 0),
    W("you", K_STOP, 0),
    W("your", K_STOP, 0),
    W("way", K_STOP, 0),
    W("get", K_STOP, 0),
    W("there", K_STOP, 0),
    W("their", K_STOP, 0),
    W("have", K_STOP, 0),
    W("has", K_STOP, 0),
    W("had", K_STOP, 0),
    W("will", K_STOP, 0),
    W("would", K_STOP, 0),
    W("should", K_STOP, 0),
    W("could", K_STOP, 0),
    W("but", K_STOP, 0),
    W("any", K_STOP, 0),
    W("all", K_STOP, 0),
    W("some", K_STOP, 0),
    W("about", K_STOP, 0),
    W("its", K_STOP, 0),
    W("our", K_STOP, 0),
    W("out", K_STOP, 0),
    W("use", K_STOP, 0),
    W("using", K_STOP, 0),
    W("who", K_STOP, 0),
    W("why", K_STOP, 0),
    W("when", K_STOP, 0),
    W("where", K_STOP, 0),
    W("this", K_STOP, 0),
    W("these", K_STOP, 0),
    W("those", K_STOP, 0),
    W("not", K_STOP, 0),
    W("best", K_STOP, 0),
    W("good", K_STOP, 0),
    W("better", K_STOP, 0),
    W("one", K_STOP, 0),
    W("more", K_STOP, 0),
    W("most", K_STOP, 0),
    W("convert", K_STOP, 0),
    W("go", K_STOP, 0),
    W("how", K_STOP, 0),
    W("want", K_STOP, 0),
    W("need", K_STOP, 0),
    /* negation */
    W("not", K_NEG, 0),
    W("no", K_NEG, 0),
    W("never", K_NEG, 0),
    W("none", K_NEG, 0),
    W("nobody", K_NEG, 0),
    W("nothing", K_NEG, 0),
    W("nowhere", K_NEG, 0),
    W("neither", K_NEG, 0),
    W("nor", K_NEG, 0),
    W("cannot", K_NEG, 0),
    W("without", K_NEG, 0),
    W("noone", K_NEG, 0),
    W("dont", K_NEG, 0),
    W("doesnt", K_NEG, 0),
    W("didnt", K_NEG, 0),
    W("isnt", K_NEG, 0),
    W("arent", K_NEG, 0),
    W("wasnt", K_NEG, 0),
    W("werent", K_NEG, 0),
    W("cant", K_NEG, 0),
    W("wont", K_NEG, 0),
    W("wouldnt", K_NEG, 0),
    W("shouldnt", K_NEG, 0),
    W("couldnt", K_NEG, 0),
    W("havent", K_NEG, 0),
    W("hasnt", K_NEG, 0),
    W("hadnt", K_NEG, 0),
    W("aint", K_NEG, 0),
    W("mustnt", K_NEG, 0),
    W("neednt", K_NEG, 0),
    /* numbers */
    W("zero", K_NUM, 0),
    W("two", K_NUM, 2),
    W("three", K_NUM, 3),
    W("four", K_NUM, 4),
    W("five", K_NUM, 5),
    W("six", K_NUM, 6),
    W("seven", K_NUM, 7),
    W("eight", K_NUM, 8),
    W("nine", K_NUM, 9),
    W("ten", K_NUM, 10),
    W("eleven", K_NUM, 11),
    W("twelve", K_NUM, 12),
    W("thirteen", K_NUM, 13),
    W("fourteen", K_NUM, 14),
    W("fifteen", K_NUM, 15),
    W("sixteen", K_NUM, 16),
    W("seventeen", K_NUM, 17),
    W("eighteen", K_NUM, 18),
    W("nineteen", K_NUM, 19),
    W("twenty", K_TENS, 20),
    W("thirty", K_TENS, 30),
    W("forty", K_TENS, 40),
    W("fifty", K_TENS, 50),
    W("sixty", K_TENS, 60),
    W("seventy", K_TENS, 70),
    W("eighty", K_TENS, 80),
    W("ninety", K_TENS, 90),
    W("one", K_NUM_SOFT, 1),
    W("first", K_NUM_SOFT, 1),
    W("third", K_NUM_SOFT, 3),
    W("fourth", K_NUM_SOFT, 4),
    W("fifth", K_NUM_SOFT, 5),
    W("sixth", K_NUM_SOFT, 6),
    W("seventh", K_NUM_SOFT, 7),
    W("eighth", K_NUM_SOFT, 8),
    W("ninth", K_NUM_SOFT, 9),
    W("tenth", K_NUM_SOFT, 10),
    /* direction pairs */
    P("buy", 0, 0),
    P("buying", 0, 0),
    P("bought", 0, 0),
    P("purchase", 0, 0),
    P("sell", 0, 1),
    P("selling", 0, 1),
    P("sold", 0, 1),
    P("ascending", 1, 0),
    P("asc", 1, 0),
    P("descending", 1, 1),
    P("desc", 1, 1),
    P("before", 2, 0),
    P("after", 2, 1),
    P("more", 3, 0),
    P("less", 3, 1),
    P("fewer", 3, 1),
    P("increase", 4, 0),
    P("increasing", 4, 0),
    P("increased", 4, 0),
    P("decrease", 4, 1),
    P("decreasing", 4, 1),
    P("decreased", 4, 1),
    P("reduce", 4, 1),
    P("raise", 4, 0),
    P("lower", 4, 1),
    P("reducing", 4, 1),
    P("max", 5, 0),
    P("maximum", 5, 0),
    P("highest", 5, 0),
    P("largest", 5, 0),
    P("biggest", 5, 0),
    P("min", 5, 1),
    P("minimum", 5, 1),
    P("lowest", 5, 1),
    P("smallest", 5, 1),
    P("best", 6, 0),
    P("worst", 6, 1),
    P("advantages", 7, 0),
    P("advantage", 7, 0),
    P("pros", 7, 0),
    P("benefits", 7, 0),
    P("disadvantages", 7, 1),
    P("disadvantage", 7, 1),
    P("cons", 7, 1),
    P("drawbacks", 7, 1),
    P("gain", 8, 0),
    P("gaining", 8, 0),
    P("lose", 8, 1),
    P("losing", 8, 1),
    P("loss", 8, 1),
    P("import", 9, 0),
    P("export", 9, 1),
    P("upload", 10, 0),
    P("download", 10, 1),
    P("encrypt", 11, 0),
    P("encryption", 11, 0),
    P("decrypt", 11, 1),
    P("decryption", 11, 1),
    P("enable", 12, 0),
    P("disable", 12, 1),
    P("add", 13, 0),
    P("remove", 13, 1),
    P("delete", 13, 1),
    P("male", 14, 0),
    P("men", 14, 0),
    P("man", 14, 0),
    P("boy", 14, 0),
    P("boys", 14, 0),
    P("husband", 14, 0),
    P("father", 14, 0),
    P("son", 14, 0),
    P("brother", 14, 0),
    P("boyfriend", 14, 0),
    P("female", 14, 1),
    P("women", 14, 1),
    P("woman", 14, 1),
    P("girl", 14, 1),
    P("girls", 14, 1),
    P("wife", 14, 1),
    P("mother", 14, 1),
    P("daughter", 14, 1),
    P("sister", 14, 1),
    P("girlfriend", 14, 1),
    P("north", 15, 0),
    P("south", 15, 1),
    P("east", 16, 0),
    P("west", 16, 1),
    P("cheap", 17, 0),
    P("cheapest", 17, 0),
    P("cheaper", 17, 0),
    P("expensive", 17, 1),
    P("costly", 17, 1),
    P("formal", 18, 0),
    P("informal", 18, 1),
    P("legal", 19, 0),
    P("illegal", 19, 1),
    P("possible", 20, 0),
    P("impossible", 20, 1),
    P("positive", 21, 0),
    P("negative", 21, 1),
    P("true", 22, 0),
    P("false", 22, 1),
    P("hot", 23, 0),
    P("cold", 23, 1),
    P("rich", 24, 0),
    P("poor", 24, 1),
    P("early", 25, 0),
    P("late", 25, 1),
    P("old", 26, 0),
    P("older", 26, 0),
    P("oldest", 26, 0),
    P("young", 26, 1),
    P("younger", 26, 1),
    P("youngest", 26, 1),
    P("strong", 27, 0),
    P("weak", 27, 1),
    P("high", 28, 0),
    P("higher", 28, 0),
    P("low", 28, 1),
    P("lower", 28, 1),
    P("fast", 29, 0),
    P("faster", 29, 0),
    P("slow", 29, 1),
    P("slower", 29, 1),
    P("easy", 30, 0),
    P("easier", 30, 0),
    P("easiest", 30, 0),
    P("hard", 30, 1),
    P("harder", 30, 1),
    P("hardest", 30, 1),
    P("difficult", 30, 1),
    P("good", 31, 0),
    P("bad", 31, 1),
    P("love", 32, 0),
    P("hate", 32, 1),
    P("agree", 33, 0),
    P("disagree", 33, 1),
    P("happy", 34, 0),
    P("sad", 34, 1),
    P("start", 35, 0),
    P("stop", 35, 1),
    P("send", 36, 0),
    P("receive", 36, 1),
    P("push", 37, 0),
    P("pull", 37, 1),
    P("input", 38, 0),
    P("output", 38, 1),
    P("above", 39, 0),
    P("below", 39, 1),
    P("inside", 40, 0),
    P("outside", 40, 1),
    P("include", 41, 0),
    P("exclude", 41, 1),
    P("accept", 42, 0),
    P("reject", 42, 1),
    P("success", 43, 0),
    P("successful", 43, 0),
    P("failure", 43, 1),
    P("fail", 43, 1),
    P("introvert", 44, 0),
    P("extrovert", 44, 1),
    P("senior", 45, 0),
    P("junior", 45, 1),
    P("plus", 46, 0),
    P("minus", 46, 1),
    P("wet", 47, 0),
    P("dry", 47, 1),
    P("win", 48, 0),
    P("winning", 48, 0),
    P("lose", 48, 1),
    P("open", 49, 0),
    P("closed", 49, 1),
    /* question words */
    W("why", K_QW, QW_WHY),
    W("when", K_QW, QW_WHEN),
    W("where", K_QW, QW_WHERE),
    W("who", K_QW, QW_WHO),
    W("whom", K_QW, QW_WHO),
    W("whose", K_QW, QW_WHO),
    /* time */
    W("yesterday", K_TIME, T_PAST_DAY),
    W("tomorrow", K_TIME, T_FUTURE_DAY),
    W("today", K_TIME, T_PRESENT),
    W("tonight", K_TIME, T_PRESENT),
    W("now", K_TIME, T_PRESENT),
    W("current", K_TIME, T_PRESENT),
    W("currently", K_TIME, T_PRESENT),
    W("latest", K_TIME, T_PRESENT),
    W("nowadays", K_TIME, T_PRESENT),
    W("recent", K_TIME, T_PRESENT),
    W("recently", K_TIME, T_PRESENT),
    W("newest", K_TIME, T_PRESENT),
    W("presently", K_TIME, T_PRESENT),
    W("this", K_REL, T_PRESENT),
    W("last", K_REL, T_PAST_PERIOD),
    W("past", K_REL, T_PAST_PERIOD),
    W("previous", K_REL, T_PAST_PERIOD),
    W("next", K_REL, T_FUTURE_PERIOD),
    W("coming", K_REL, T_FUTURE_PERIOD),
    W("upcoming", K_REL, T_FUTURE_PERIOD),
    W("ago", K_AGO, 0),
    W("week", K_PERIOD, 0),
    W("weeks", K_PERIOD, 0),
    W("weekend", K_PERIOD, 0),
    W("month", K_PERIOD, 0),
    W("months", K_PERIOD, 0),
    W("year", K_PERIOD, 0),
    W("years", K_PERIOD, 0),
    W("night", K_PERIOD, 0),
    W("decade", K_PERIOD, 0),
    W("century", K_PERIOD, 0),
    W("season", K_PERIOD, 0),
    W("quarter", K_PERIOD, 0),
    W("semester", K_PERIOD, 0),
    W("summer", K_PERIOD, 0),
    W("winter", K_PERIOD, 0),
    W("days", K_PERIOD, 0),
    W("hours", K_PERIOD, 0),
    W("january", K_MONTH, 0),
    W("jan", K_MONTH, 0),
    W("february", K_MONTH, 1),
    W("feb", K_MONTH, 1),
    W("march", K_MARCH, 2),
    W("april", K_MONTH, 3),
    W("apr", K_MONTH, 3),
    W("june", K_MONTH, 5),
    W("jun", K_MONTH, 5),
    W("july", K_MONTH, 6),
    W("jul", K_MONTH, 6),
    W("august", K_MONTH, 7),
    W("aug", K_MONTH, 7),
    W("september", K_MONTH, 8),
    W("sep", K_MONTH, 8),
    W("sept", K_MONTH, 8),
    W("october", K_MONTH, 9),
    W("oct", K_MONTH, 9),
    W("november", K_MONTH, 10),
    W("nov", K_MONTH, 10),
    W("december", K_MONTH, 11),
    W("dec", K_MONTH, 11),
    W("monday", K_WDAY, 0),
    W("tuesday", K_WDAY, 1),
    W("wednesday", K_WDAY, 2),
    W("thursday", K_WDAY, 3),
    W("friday", K_WDAY, 4),
    W("saturday", K_WDAY, 5),
    W("sunday", K_WDAY, 6),
    /* units */
    W("km", K_UNIT, U_KM),
    W("kms", K_UNIT, U_KM),
    W("kilometer", K_UNIT, U_KM),
    W("kilometers", K_UNIT, U_KM),
    W("kilometre", K_UNIT, U_KM),
    W("kilometres", K_UNIT, U_KM),
    W("mi", K_UNIT, U_MILE),
    W("mile", K_UNIT, U_MILE),
    W("miles", K_UNIT, U_MILE),
    W("meter", K_UNIT, U_METER),
    W("meters", K_UNIT, U_METER),
    W("metre", K_UNIT, U_METER),
    W("metres", K_UNIT, U_METER),
    W("cm", K_UNIT, U_CM),
    W("centimeter", K_UNIT, U_CM),
    W("centimeters", K_UNIT, U_CM),
    W("mm", K_UNIT, U_MM),
    W("millimeter", K_UNIT, U_MM),
    W("millimeters", K_UNIT, U_MM),
    W("inch", K_UNIT, U_INCH),
    W("inches", K_UNIT, U_INCH),
    W("ft", K_UNIT, U_FOOT),
    W("foot", K_UNIT, U_FOOT),
    W("feet", K_UNIT, U_FOOT),
    W("kg", K_UNIT, U_KG),
    W("kgs", K_UNIT, U_KG),
    W("kilogram", K_UNIT, U_KG),
    W("kilograms", K_UNIT, U_KG),
    W("kilo", K_UNIT, U_KG),
    W("kilos", K_UNIT, U_KG),
    W("lb", K_UNIT, U_LB),
    W("lbs", K_UNIT, U_LB),
    W("pound", K_UNIT, U_LB),
    W("pounds", K_UNIT, U_LB),
    W("gram", K_UNIT, U_GRAM),
    W("grams", K_UNIT, U_GRAM),
    W("oz", K_UNIT, U_OZ),
    W("ounce", K_UNIT, U_OZ),
    W("ounces", K_UNIT, U_OZ),
    W("celsius", K_UNIT, U_CELSIUS),
    W("centigrade", K_UNIT, U_CELSIUS),
    W("fahrenheit", K_UNIT, U_FAHRENHEIT),
    W("usd", K_UNIT, U_USD),
    W("dollar", K_UNIT, U_USD),
    W("dollars", K_UNIT, U_USD),
    W("bucks", K_UNIT, U_USD),
    W("eur", K_UNIT, U_EUR),
    W("euro", K_UNIT, U_EUR),
    W("euros", K_UNIT, U_EUR),
    W("gbp", K_UNIT, U_GBP),
    W("sterling", K_UNIT, U_GBP),
    W("jpy", K_UNIT, U_JPY),
    W("yen", K_UNIT, U_JPY),
    W("inr", K_UNIT, U_INR),
    W("rupee", K_UNIT, U_INR),
    W("rupees", K_UNIT, U_INR),
    W("rs", K_UNIT, U_INR),
    W("cny", K_UNIT, U_CNY),
    W("yuan", K_UNIT, U_CNY),
    W("rmb", K_UNIT, U_CNY),
    W("krw", K_UNIT, U_KRW),
    W("btc", K_UNIT, U_BTC),
    W("seconds", K_UNIT, U_SECOND),
    W("sec", K_UNIT, U_SECOND),
    W("secs", K_UNIT, U_SECOND),
    W("minute", K_UNIT, U_MINUTE),
    W("minutes", K_UNIT, U_MINUTE),
    W("mins", K_UNIT, U_MINUTE),
    W("hour", K_UNIT, U_HOUR),
    W("hours", K_UNIT, U_HOUR),
    W("hr", K_UNIT, U_HOUR),
    W("hrs", K_UNIT, U_HOUR),
    W("day", K_UNIT, U_DAY),
    W("days", K_UNIT, U_DAY),
    W("week", K_UNIT, U_WEEK),
    W("weeks", K_UNIT, U_WEEK),
    W("month", K_UNIT, U_MONTH),
    W("months", K_UNIT, U_MONTH),
    W("year", K_UNIT, U_YEAR),
    W("years", K_UNIT, U_YEAR),
    W("yr", K_UNIT, U_YEAR),
    W("yrs", K_UNIT, U_YEAR),
    W("percent", K_UNIT, U_PERCENT),
    W("percentage", K_UNIT, U_PERCENT),
    W("pct", K_UNIT, U_PERCENT),
    W("liter", K_UNIT, U_LITER),
    W("liters", K_UNIT, U_LITER),
    W("litre", K_UNIT, U_LITER),
    W("litres", K_UNIT, U_LITER),
    W("ml", K_UNIT, U_ML),
    W("gallon", K_UNIT, U_GALLON),
    W("gallons", K_UNIT, U_GALLON),
    W("kb", K_UNIT, U_KB),
    W("kilobyte", K_UNIT, U_KB),
    W("kilobytes", K_UNIT, U_KB),
    W("mb", K_UNIT, U_MB),
    W("megabyte", K_UNIT, U_MB),
    W("megabytes", K_UNIT, U_MB),
    W("gb", K_UNIT, U_GB),
    W("gigabyte", K_UNIT, U_GB),
    W("gigabytes", K_UNIT, U_GB),
    W("tb", K_UNIT, U_TB),
    W("terabyte", K_UNIT, U_TB),
    W("terabytes", K_UNIT, U_TB),
    W("mph", K_UNIT, U_MPH),
    W("kmh", K_UNIT, U_KMH),
    W("kph", K_UNIT, U_KMH),
    W("calorie", K_UNIT, U_CALORIE),
    W("calories", K_UNIT, U_CALORIE),
    W("kcal", K_UNIT, U_CALORIE),
    W("acre", K_UNIT, U_ACRE),
    W("acres", K_UNIT, U_ACRE),
    W("hectare", K_UNIT, U_HECTARE),
    W("hectares", K_UNIT, U_HECTARE),
    W("ghz", K_UNIT, U_GHZ),
    W("mhz", K_UNIT, U_MHZ),
    W("kwh", K_UNIT, U_KWH),
};
#define NDICT (sizeof DICT / sizeof DICT[0])

/* A hash index over DICT, built once (then read-only): chains of entry
 * indexes + 1 per bucket. */
#define DICT_BUCKETS 1024
#define DICT_HITS 8 /* most entries one word has */
static uint16_t g_dict_head[DICT_BUCKETS];
static uint16_t g_dict_next[NDICT];
static pthread_once_t g_dict_once = PTHREAD_ONCE_INIT;

static uint64_t fnv(const char *p, size_t n);

static void dict_build(void) {
    for (size_t k = NDICT; k-- > 0;) {
        size_t b = (size_t)fnv(DICT[k].w, DICT[k].len) & (DICT_BUCKETS - 1);
        g_dict_next[k] = g_dict_head[b];
        g_dict_head[b] = (uint16_t)(k + 1);
    }
}

/* The DICT entries for word w[0..n) (at most DICT_HITS), in table order. */
static int dict_lookup(const char *w, size_t n, int *out) {
    int m = 0;
    if (n == 0 || n > WORD_MAX)
        return 0;
    pthread_once(&g_dict_once, dict_build);
    size_t b = (size_t)fnv(w, n) & (DICT_BUCKETS - 1);
    for (unsigned k = g_dict_head[b]; k && m < DICT_HITS; k = g_dict_next[k - 1])
        if (DICT[k - 1].len == n && memcmp(DICT[k - 1].w, w, n) == 0)
            out[m++] = (int)(k - 1);
    return m;
}

/* ------------------------------------------------------------------ */
/* Extraction                                                           */

#define FNV_OFF UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME UINT64_C(0x100000001b3)

static uint64_t fnv(const char *p, size_t n) {
    uint64_t h = FNV_OFF;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * FNV_PRIME;
    return h;
}

static void add_num(feat *f, const char *v, size_t vlen, size_t off, size_t len, int soft) {
    if (f->nnum >= MAX_NUMS)
        return;
    num_t *x = &f->num[f->nnum++];
    x->h = fnv(v, vlen);
    x->at.off = (uint16_t)off;
    x->at.len = (uint16_t)len;
    x->soft = (uint8_t)soft;
}

static void add_num_value(feat *f, unsigned v, size_t off, size_t len, int soft) {
    char b[8];
    size_t n = 0;
    char t[8];
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < sizeof t);
    for (size_t i = 0; i < n; i++)
        b[i] = t[n - 1 - i];
    add_num(f, b, n, off, len, soft);
}

/* Digit runs: "1,000" (a comma before exactly three digits) is 1000;
 * "2.50" is 2.5, "007" is 7, "3.10.1" stays as written. Letters around
 * the digits are not part of the number ("3rd" = 3, "mp3" = 3). */
static void scan_numbers(feat *f) {
    const char *s = f->norm;
    size_t n = f->n;
    for (size_t i = 0; i < n;) {
        if (!is_digit(s[i])) {
            i++;
            continue;
        }
        char b[64];
        size_t bl = 0, j = i;
        int dots = 0;
        while (j < n) {
            if (is_digit(s[j])) {
                if (bl < sizeof b - 1)
                    b[bl++] = s[j];
                j++;
            } else if (s[j] == ',' && j + 4 < n && is_digit(s[j + 1]) && is_digit(s[j + 2]) &&
                       is_digit(s[j + 3]) && !is_digit(s[j + 4]) && s[j + 4] != ',') {
                j++; /* thousands separator (a trailing group) */
            } else if (s[j] == ',' && j + 4 < n && is_digit(s[j + 1]) && is_digit(s[j + 2]) &&
                       is_digit(s[j + 3]) && s[j + 4] == ',' && j + 5 < n && is_digit(s[j + 5])) {
                j++; /* a middle group of 1,000,000 */
            } else if (s[j] == '.' && j + 1 < n && is_digit(s[j + 1])) {
                if (bl < sizeof b - 1)
                    b[bl++] = '.';
                dots++;
                j++;
            } else {
                break;
            }
        }
        /* normalise */
        size_t start = 0;
        while (start + 1 < bl && b[start] == '0' && is_digit(b[start + 1]))
            start++;
        if (dots == 1) {
            while (bl > start && b[bl - 1] == '0')
                bl--;
            if (bl > start && b[bl - 1] == '.')
                bl--;
        }
        /* 60k = 60000 */
        if (!dots && j < n && s[j] == 'k' && (j + 1 >= n || !is_alnum(s[j + 1])) &&
            bl + 3 < sizeof b) {
            memcpy(b + bl, "000", 3);
            bl += 3;
        }
        add_num(f, b + start, bl - start, i, j - i, 0);
        i = j;
    }
}

static int is_hangul(int32_t cp) {
    return cp >= 0xAC00 && cp <= 0xD7A3;
}

static int in_set(int32_t cp, const int32_t *set, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (set[i] == cp)
            return 1;
    return 0;
}

/* Korean negation in one word of code points w[0..n); prev_ji: the previous
 * word ended in a 지 after another syllable (for a spaced "-지 마"). */
static int korean_neg(const int32_t *w, size_t n, int prev_ji) {
    static const int32_t AN_NEXT[] = {0xB418, 0xB3FC, 0xB410, 0xB420, 0xD574, 0xD588, 0xD560,
                                      0xD568, 0xC88B, 0xB9DE, 0xB4E4, 0xC640, 0xBA39};
    static const int32_t MA_NEXT[] = {0xC138, 0xB77C, 0xC694, 0xC2ED, 0xC2DC};
    static const int32_t MAL_NEXT[] = {0xACE0, 0xC544, 0xB77C, 0xC790};
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (w[i] == 0xC54A || w[i] == 0xC5C6) /* 않 없 */
            return 1;
    if (w[0] == 0xC548 && (n == 1 || in_set(w[1], AN_NEXT, sizeof AN_NEXT / sizeof *AN_NEXT)))
        return 1;       /* 안 */
    if (w[0] == 0xBABB) /* 못 */
        return 1;
    if (n >= 2 && w[0] == 0xC544 &&
        (w[1] == 0xB2C8 || w[1] == 0xB2CC || w[1] == 0xB2D8 || w[1] == 0xB0D0))
        return 1; /* 아니 아닌 아님 아냐 */
    /* -지 마/말/맙: at k (after a 지 at k-1 preceded by a syllable), or at
     * 0 when the previous word ended in such a 지 */
    for (size_t k = 0; k < n; k++) {
        int after_ji = k == 0 ? prev_ji : (k >= 2 && w[k - 1] == 0xC9C0 && is_hangul(w[k - 2]));
        if (!after_ji)
            continue;
        int end = k + 1 == n;
        int32_t nx = end ? 0 : w[k + 1];
        if (w[k] == 0xB9C8 && (end || in_set(nx, MA_NEXT, sizeof MA_NEXT / sizeof *MA_NEXT)))
            return 1; /* 마 */
        if (w[k] == 0xB9D0 && (end || in_set(nx, MAL_NEXT, sizeof MAL_NEXT / sizeof *MAL_NEXT)))
            return 1; /* 말 */
        if (w[k] == 0xB9D9 && !end && nx == 0xC2DC)
            return 1; /* 맙시다 */
    }
    return 0;
}

static void add_span(span *arr, int *n, int cap, size_t off, size_t len) {
    if (*n >= cap || len == 0 || len > 0xFFFF)
        return;
    arr[*n].off = (uint16_t)off;
    arr[*n].len = (uint16_t)len;
    (*n)++;
}

static void apply_symbol(feat *f, int32_t cp, size_t i) {
    switch (cp) {
    case '$':
        f->units |= UINT64_C(1) << U_USD;
        break;
    case '%':
        f->units |= UINT64_C(1) << U_PERCENT;
        break;
    case 0x20AC:
        f->units |= UINT64_C(1) << U_EUR;
        break;
    case 0xA3:
        f->units |= UINT64_C(1) << U_GBP;
        break;
    case 0xA5:
        f->units |= UINT64_C(1) << U_JPY;
        break;
    case 0x20B9:
        f->units |= UINT64_C(1) << U_INR;
        break;
    case 0x20A9:
        f->units |= UINT64_C(1) << U_KRW;
        break;
    case 0x2103:
        f->units |= UINT64_C(1) << U_CELSIUS;
        break;
    case 0x2109:
        f->units |= UINT64_C(1) << U_FAHRENHEIT;
        break;
    case 0xB0: /* ° then c or f */
        if (i + 2 < f->n && f->norm[i + 2] == 'c' && !is_alnum(f->norm[i + 3]))
            f->units |= UINT64_C(1) << U_CELSIUS;
        if (i + 2 < f->n && f->norm[i + 2] == 'f' && !is_alnum(f->norm[i + 3]))
            f->units |= UINT64_C(1) << U_FAHRENHEIT;
        break;
    default:
        break;
    }
}

static int word_is(const char *s, span w, const char *lit) {
    size_t n = strlen(lit);
    return w.len == n && memcmp(s + w.off, lit, n) == 0;
}

/* Words: negation, number words, dictionary classes, names, Korean. */
static void scan_words(feat *f) {
    const char *s = f->norm;
    size_t n = f->n;
    int initial = 1;               /* the next word starts a sentence */
    int rel = 0;                   /* class a period word gets (after this/last/next) */
    int rel_age = 99;              /* words since the rel word */
    int tens_idx = -1;             /* index in num[] of the tens word just before */
    unsigned tens_val = 0;         /* its value */
    size_t tens_end = 0;           /* where that word ended */
    int prev_ji = 0;               /* previous word ended in -지 */
    span w1 = {0, 0}, w2 = {0, 0}; /* the previous two words */
    int word_no = 0;
    size_t i = 0;
    while (i < n) {
        size_t l;
        int32_t cp = cp_at(f, i, &l);
        int cls = cp_class(cp);
        if (cls != C_WORD) {
            if (cp == '.' || cp == '?' || cp == '!' || cp == ':' || cp == ';' || cp == '"' ||
                cp == '(' || cp == '[' || cp == '*' || cp == '#' || cp == '>' || cp == '\n' ||
                cp == '\'' || cp == '`' || cp == '-' || cp == '|' || cp == 0x300C || cp == 0x300E ||
                cp == 0xAB)
                initial = 1;
            if (cls == C_PUNCT)
                apply_symbol(f, cp, i);
            /* -> => → as direction markers before the next word */
            if ((cp == 0x2192 || (cp == '>' && i > 0 && (s[i - 1] == '-' || s[i - 1] == '='))) &&
                f->nmark < MAX_MARKS)
                f->mark_than[f->nmark] = 0, f->mark[f->nmark++] = 2 * word_no - 1;
            i += l;
            continue;
        }
        /* a word: letters, digits, non-ASCII letters, inner apostrophes */
        size_t ws = i, we = i;
        int32_t cps[WORD_MAX];
        size_t ncp = 0;
        int hangul = 0;
        while (we < n) {
            size_t cl;
            int32_t c = cp_at(f, we, &cl);
            if (cp_class(c) == C_WORD) {
                if (ncp < WORD_MAX)
                    cps[ncp++] = c;
                hangul |= is_hangul(c);
                we += cl;
            } else if (c == '\'' && we > ws && is_alnum(s[we - 1]) && we + 1 < n &&
                       is_alnum(s[we + 1]) && !is_digit(s[we + 1])) {
                if (ncp < WORD_MAX)
                    cps[ncp++] = c;
                we += 1;
            } else {
                break;
            }
        }
        size_t wl = we - ws;
        const char *w = s + ws;
        /* dictionary form: without a possessive 's */
        size_t dl = wl;
        if (dl > 2 && w[dl - 2] == '\'' && w[dl - 1] == 's')
            dl -= 2;
        int neg = 0, cap = is_cap(f, ws);
        if (wl >= 4 && w[wl - 3] == 'n' && w[wl - 2] == '\'' && w[wl - 1] == 't')
            neg = 1;
        if (hangul && korean_neg(cps, ncp < WORD_MAX ? ncp : WORD_MAX, prev_ji))
            neg = 1;
        /* units glued to a number: 5km, 10usd */
        size_t us = 0;
        while (us < dl && (is_digit(w[us]) || w[us] == '.' || w[us] == ','))
            us++;
        int rel_here = 0;
        int is_tens = -1;
        int stop = dl < 3, mark = 0;
        int hits[DICT_HITS];
        if (us > 0 && us < dl) {
            int nh = dict_lookup(w + us, dl - us, hits);
            for (int q = 0; q < nh; q++)
                if (DICT[hits[q]].kind == K_UNIT)
                    f->units |= UINT64_C(1) << DICT[hits[q]].val;
        }
        {
            int nh = dict_lookup(w, dl, hits);
            for (int q = 0; q < nh; q++) {
                const dword *d = &DICT[hits[q]];
                switch (d->kind) {
                case K_STOP:
                    stop = 1;
                    break;
                case K_MARK:
                    mark = 1 + d->val; /* 2: "than" */
                    stop = 1;
                    break;
                case K_NEG:
                    neg = 1;
                    break;
                case K_NUM:
                case K_NUM_SOFT:
                    if (tens_idx >= 0 && d->val >= 1 && d->val <= 9 && ws == tens_end + 1 &&
                        (s[tens_end] == '-' || s[tens_end] == ' ')) {
                        /* twenty-five */
                        size_t toff = f->num[tens_idx].at.off;
                        f->nnum = tens_idx;
                        add_num_value(f, tens_val + d->val, toff, we - toff, 0);
                        tens_idx = -1;
                    } else {
                        add_num_value(f, d->val, ws, wl, d->kind == K_NUM_SOFT);
                    }
                    break;
                case K_TENS:
                    is_tens = f->nnum < MAX_NUMS ? f->nnum : -1;
                    tens_val = d->val;
                    add_num_value(f, d->val, ws, wl, 0);
                    break;
                case K_POLE:
                    f->pole[d->val & 1u] |= UINT64_C(1) << (d->val >> 1);
                    break;
                case K_QW:
                    f->qw |= d->val;
                    break;
                case K_TIME:
                    f->tclass |= d->val;
                    break;
                case K_REL:
                    rel_here = d->val;
                    break;
                case K_PERIOD:
                    if (rel && rel_age <= 2)
                        f->tclass |= (unsigned)rel;
                    break;
                case K_AGO:
                    f->tclass |= T_PAST_PERIOD;
                    break;
                case K_MONTH:
                    f->months |= 1u << d->val;
                    break;
                case K_MARCH:
                    if (cap)
                        f->months |= 1u << d->val;
                    break;
                case K_WDAY:
                    f->wdays |= 1u << d->val;
                    break;
                case K_UNIT:
                    f->units |= UINT64_C(1) << d->val;
                    break;
                default:
                    break;
                }
            }
        }
        /* not negations: "or not", "why or why not", "whether or no",
         * the abbreviation "no." (number) */
        if (neg && !hangul &&
            (word_is(s, w1, "or") || (word_is(s, w1, "why") && word_is(s, w2, "or")) ||
             (wl == 2 && w[0] == 'n' && w[1] == 'o' && s[we] == '.' && ws > 1)))
            neg = 0;
        if (neg && !f->neg) {
            f->neg = 1;
            f->neg_at.off = (uint16_t)ws;
            f->neg_at.len = (uint16_t)wl;
        }
        /* names: capitalised, not starting a sentence, not "I" */
        if (!initial && w[0] >= 'a' && w[0] <= 'z') {
            f->n_alpha_words++;
            if (cap) {
                f->n_cap_words++;
                if (!(w[0] == 'i' && (wl == 1 || w[1] == '\''))) /* not "I", "I'm" */
                    add_span(f->ent, &f->nent, MAX_ENTS, ws, dl);
            }
        }
        if (rel_here) {
            rel = rel_here;
            rel_age = 0;
        } else {
            rel_age++;
        }
        tens_idx = is_tens;
        tens_end = we;
        prev_ji = hangul && ncp >= 2 && ncp < WORD_MAX && cps[ncp - 1] == 0xC9C0 &&
                  is_hangul(cps[ncp - 2]);
        if (mark && f->nmark < MAX_MARKS)
            f->mark_than[f->nmark] = (uint8_t)(mark - 1), f->mark[f->nmark++] = 2 * word_no;
        else if (!stop && f->ncw < MAX_CONTENT) {
            uint64_t h = fnv(w, dl);
            int seen = 0;
            for (int k = 0; k < f->ncw && !seen; k++)
                seen = f->cw[k] == h;
            if (!seen) {
                f->cw[f->ncw] = h;
                f->cw_pos[f->ncw++] = 2 * word_no;
            }
        }
        word_no++;
        w2 = w1;
        w1.off = (uint16_t)ws;
        w1.len = (uint16_t)wl;
        initial = 0;
        i = we;
    }
}

/* Quoted strings: content spans (trimmed) of "..", `..`, '..' (an opening
 * quote after a non-letter, a closing one before a non-letter), «..»,
 * 「..」, 『..』. Curly quotes were folded to ASCII by normalise(). */
static void scan_quotes(feat *f) {
    const char *s = f->norm;
    size_t n = f->n;
    /* an opener whose search for a closer failed: later openers of the
     * same kind would fail too, so each kind gives up once (linear time) */
    int no_dq = 0, no_sq = 0, no_close[3] = {0, 0, 0};
    unsigned no_bt = 0; /* backtick run lengths 1..31 with no closer */
    for (size_t i = 0; i < n && f->nquote < MAX_QUOTES;) {
        unsigned char c = (unsigned char)s[i];
        size_t open = 0, cs = 0, ce = 0, next = i + 1;
        if (c == '"' && !no_dq) {
            const char *e = memchr(s + i + 1, '"', n - i - 1);
            if (e)
                open = 1, cs = i + 1, ce = (size_t)(e - s), next = ce + 1;
            else
                no_dq = 1;
        } else if (c == '`') {
            size_t k = i;
            while (k < n && s[k] == '`')
                k++;
            size_t run = k - i, j = k;
            next = k;
            if (run < 32 && !(no_bt & (1u << run))) {
                while (j < n && !open) {
                    const char *e = memchr(s + j, '`', n - j);
                    if (!e)
                        break;
                    size_t p = (size_t)(e - s), q = p;
                    while (q < n && s[q] == '`')
                        q++;
                    if (q - p == run)
                        open = 1, cs = k, ce = p, next = q;
                    j = q;
                }
                if (!open)
                    no_bt |= 1u << run;
            }
        } else if (c == '\'' && !no_sq && i > 0 && !is_alnum(s[i - 1]) && s[i - 1] != '\'' &&
                   i + 1 < n && s[i + 1] != ' ' && s[i + 1] != '\n') {
            for (size_t j = i + 2; j < n && !open; j++)
                if (s[j] == '\'' && s[j - 1] != ' ' && s[j - 1] != '\n' &&
                    (j + 1 >= n || !is_alnum(s[j + 1])))
                    open = 1, cs = i + 1, ce = j, next = j + 1;
            if (!open)
                no_sq = 1;
        } else if (c >= 0xC2) {
            size_t l;
            int32_t cp = cp_at(f, i, &l);
            int kind = cp == 0xAB ? 0 : cp == 0x300C ? 1 : cp == 0x300E ? 2 : -1;
            int32_t close = cp == 0xAB ? 0xBB : cp + 1;
            next = i + l;
            if (kind >= 0 && !no_close[kind]) {
                for (size_t j = i + l; j < n && !open;) {
                    size_t l2;
                    int32_t c2 = cp_at(f, j, &l2);
                    if (c2 == close)
                        open = 1, cs = i + l, ce = j, next = j + l2;
                    j += l2;
                }
                if (!open)
                    no_close[kind] = 1;
            }
        }
        if (open) {
            while (cs < ce && (s[cs] == ' ' || s[cs] == '\n'))
                cs++;
            while (ce > cs && (s[ce - 1] == ' ' || s[ce - 1] == '\n'))
                ce--;
            add_span(f->quote, &f->nquote, MAX_QUOTES, cs, ce - cs);
        }
        i = next;
    }
}

static int code_char(int c) {
    return is_alnum(c) || c == '_' || c == '.' || c == '/' || c == '#' || c == '+';
}

/* Length of a "::" or "://" at s[j], else 0. */
static size_t code_colon(const char *s, size_t n, size_t j) {
    if (s[j] != ':' || j + 1 >= n)
        return 0;
    if (s[j + 1] == ':')
        return 2;
    return j + 2 < n && s[j + 1] == '/' && s[j + 2] == '/' ? 3 : 0;
}

/* Code tokens: runs of letters, digits, _ . / # + :: :// holding snake_case,
 * camelCase, a.bc (module, file or domain), ::, a path, a URL, c++ / c#. */
static void scan_code(feat *f) {
    const char *s = f->norm;
    size_t n = f->n;
    for (size_t i = 0; i < n && f->ncode < MAX_CODES;) {
        if (!code_char(s[i])) {
            i++;
            continue;
        }
        size_t j = i, cl;
        while (j < n) {
            if (code_char(s[j]))
                j++;
            else if ((cl = code_colon(s, n, j)) != 0)
                j += cl;
            else
                break;
        }
        size_t a = i, b = j;
        while (b > a && (s[b - 1] == '.' || s[b - 1] == ':' || s[b - 1] == '/'))
            b--;
        int code = 0;
        for (size_t k = a; k < b && !code; k++) {
            char c = s[k];
            if (c == '_' && k > a && k + 1 < b && is_alnum(s[k - 1]) && is_alnum(s[k + 1]))
                code = 1;
            else if (c == '.' && k > a && is_alnum(s[k - 1]) && k + 2 < b && is_lower(s[k + 1]) &&
                     is_lower(s[k + 2]))
                code = 1;
            else if (c == ':' && k + 1 < b && s[k + 1] == ':')
                code = 1;
            else if (c == ':' && k + 2 < b && s[k + 1] == '/' && s[k + 2] == '/')
                code = 1;
            else if (is_lower(c) && !is_cap(f, k) && k + 1 < b && is_lower(s[k + 1]) &&
                     is_cap(f, k + 1))
                code = 1; /* camelCase */
            else if ((c == '+' || c == '#') && k > a && is_lower(s[k - 1]) &&
                     (c == '#' || (k + 1 < b && s[k + 1] == '+')))
                code = 1; /* c++ c# */
        }
        if (!code && b > a + 1 && s[a] == '/' && is_alnum(s[a + 1]))
            code = 1; /* /usr/bin */
        if (code)
            add_span(f->code, &f->ncode, MAX_CODES, a, b - a);
        i = j;
    }
}

static void extract(feat *f, const char *text, size_t len) {
    f->nnum = f->nquote = f->nent = f->ncode = 0;
    f->neg = 0;
    f->n_alpha_words = f->n_cap_words = 0;
    f->pole[0] = f->pole[1] = 0;
    f->qw = f->tclass = f->months = f->wdays = 0;
    f->units = 0;
    f->ncw = f->nmark = 0;
    normalise(f, text ? text : "", text ? len : 0);
    scan_words(f);
    scan_numbers(f);
    scan_quotes(f);
    scan_code(f);
}

/* ------------------------------------------------------------------ */
/* Comparison                                                           */

/* Whether the character ending just before i / starting at i is a word
 * character (a letter or digit, ASCII or not). */
static int word_before(const feat *f, size_t i) {
    if (i == 0)
        return 0;
    size_t k = i - 1, l;
    while (k > 0 && ((unsigned char)f->norm[k] & 0xC0u) == 0x80u)
        k--;
    return cp_class(cp_at(f, k, &l)) == C_WORD;
}

static int word_at(const feat *f, size_t i) {
    size_t l;
    return i < f->n && cp_class(cp_at(f, i, &l)) == C_WORD;
}

/* needle (lower case) occurs in hay's normalised text as a word: no letter
 * or digit just before it; after it, at most `suffix` lower-case letters
 * (plural, demonym: India/Indian) and then no letter or digit. */
static int word_in(const feat *hay, const char *needle, size_t nl, size_t suffix) {
    const char *s = hay->norm;
    size_t n = hay->n, from = 0;
    if (nl == 0)
        return 1;
    while (from < n) {
        const char *p = memmem(s + from, n - from, needle, nl);
        if (!p)
            return 0;
        size_t at = (size_t)(p - s), end = at + nl;
        int before_ok = !word_before(hay, at);
        size_t k = 0;
        while (k < suffix && end + k < n && is_lower(s[end + k]))
            k++;
        for (size_t t = 0; t <= k && before_ok; t++)
            if (!word_at(hay, end + t))
                return 1;
        from = at + 1;
    }
    return 0;
}

/* A code token occurs in hay, not inside a longer name (a component of a
 * dotted or slashed name counts: AudioClassification in
 * datasets.AudioClassification). */
static int code_in(const feat *hay, const char *needle, size_t nl) {
    const char *s = hay->norm;
    size_t n = hay->n, from = 0;
    while (from < n) {
        const char *p = memmem(s + from, n - from, needle, nl);
        if (!p)
            return 0;
        size_t at = (size_t)(p - s), end = at + nl;
        /* a whole token or a dotted / slashed component of one */
        int before_ok = at == 0 || !(is_alnum(s[at - 1]) || s[at - 1] == '_');
        int after_ok = end >= n || !(is_alnum(s[end]) || s[end] == '_');
        if (before_ok && after_ok)
            return 1;
        from = at + 1;
    }
    return 0;
}

/* Appends s[0..n) to d (cap bytes with the NUL), cut at a UTF-8 boundary
 * when it does not fit; newlines and invalid-byte marks become spaces. */
static void put(char *d, size_t cap, size_t *o, const char *s, size_t n) {
    if (*o + 1 >= cap)
        return;
    size_t fit = n < cap - 1 - *o ? n : cap - 1 - *o;
    if (fit < n)
        while (fit > 0 && ((unsigned char)s[fit] & 0xC0u) == 0x80u)
            fit--;
    for (size_t i = 0; i < fit; i++) {
        char c = s[i];
        d[(*o)++] = (c == '\n' || c == '\x01') ? ' ' : c;
    }
    d[*o] = '\0';
}

static void puts_(char *d, size_t cap, size_t *o, const char *s) {
    put(d, cap, o, s, strlen(s));
}

/* Writes `WHAT "TEXT" only in the new/cached query` (TEXT cut to 40). */
static void detail_only(cg_gate_result *out, const char *what, const feat *f, span at, int asked) {
    if (!out)
        return;
    size_t o = 0;
    char *d = out->detail;
    size_t cap = sizeof out->detail;
    puts_(d, cap, &o, what);
    puts_(d, cap, &o, " \"");
    size_t m = at.len > 40 ? 40 : at.len;
    while (m < at.len && m > 0 && ((unsigned char)f->norm[at.off + m] & 0xC0u) == 0x80u)
        m--; /* at a UTF-8 boundary */
    put(d, cap, &o, f->norm + at.off, m);
    puts_(d, cap, &o, asked ? "\" only in the new query" : "\" only in the cached query");
}

static void detail_pair(cg_gate_result *out, const char *what, const char *a, const char *b) {
    if (!out)
        return;
    size_t o = 0;
    char *d = out->detail;
    size_t cap = sizeof out->detail;
    puts_(d, cap, &o, what);
    puts_(d, cap, &o, ": ");
    puts_(d, cap, &o, a);
    puts_(d, cap, &o, " vs ");
    puts_(d, cap, &o, b);
}

static int cmp_u64(uint64_t a, uint64_t b) {
    return a < b ? -1 : a > b;
}

static void sort_nums(num_t *v, int n) {
    for (int i = 1; i < n; i++) {
        num_t x = v[i];
        int j = i - 1;
        while (j >= 0 && cmp_u64(v[j].h, x.h) > 0) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = x;
    }
}

/* Numbers: the hard multisets must be equal, except that a hard number of
 * one text may be matched by a soft number word of the other. */
static int check_numbers(feat *a, feat *b, unsigned rules, cg_gate_result *out) {
    int digits_only = (rules & CG_GATE_V_DIGITS_ONLY) != 0;
    feat *fs[2] = {a, b};
    num_t hard[2][MAX_NUMS], soft[2][MAX_NUMS];
    int nh[2] = {0, 0}, ns[2] = {0, 0};
    for (int t = 0; t < 2; t++) {
        for (int k = 0; k < fs[t]->nnum; k++) {
            num_t *x = &fs[t]->num[k];
            int word = !is_digit(fs[t]->norm[x->at.off]);
            if (word && digits_only)
                continue;
            if (x->soft)
                soft[t][ns[t]++] = *x;
            else
                hard[t][nh[t]++] = *x;
        }
        sort_nums(hard[t], nh[t]);
    }
    uint8_t used[2][MAX_NUMS];
    memset(used, 0, sizeof used);
    int i = 0, j = 0;
    while (i < nh[0] || j < nh[1]) {
        int c = i >= nh[0] ? 1 : j >= nh[1] ? -1 : cmp_u64(hard[0][i].h, hard[1][j].h);
        if (c == 0) {
            i++, j++;
            continue;
        }
        int t = c < 0 ? 0 : 1; /* the side with the unmatched number */
        num_t *x = t == 0 ? &hard[0][i++] : &hard[1][j++];
        int o = 1 - t, found = 0;
        for (int k = 0; k < ns[o] && !found; k++)
            if (!used[o][k] && soft[o][k].h == x->h)
                used[o][k] = 1, found = 1;
        if (!found) {
            detail_only(out, "number", fs[t], x->at, t == 0);
            return 1;
        }
    }
    return 0;
}

static int check_quotes(const feat *a, const feat *b, cg_gate_result *out) {
    const feat *fs[2] = {a, b};
    for (int t = 0; t < 2; t++) {
        const feat *f = fs[t], *o = fs[1 - t];
        for (int k = 0; k < f->nquote; k++) {
            span q = f->quote[k];
            if (!memmem(o->norm, o->n, f->norm + q.off, q.len)) {
                detail_only(out, "quoted", f, q, t == 0);
                return 1;
            }
        }
    }
    return 0;
}

/* Index of the first name of f missing from o, or -1. */
static int missing_name(const feat *f, const feat *o) {
    if (f->n_alpha_words >= 4 && f->n_cap_words * 10 >= f->n_alpha_words * 6)
        return -1; /* Title Case or ALL CAPS: capitals say nothing */
    for (int k = 0; k < f->nent; k++)
        if (!word_in(o, f->norm + f->ent[k].off, f->ent[k].len, 3))
            return k;
    return -1;
}

static int check_entities(const feat *a, const feat *b, unsigned rules, cg_gate_result *out) {
    int ma = missing_name(a, b), mb = missing_name(b, a);
    int strict = (rules & CG_GATE_V_ENTITIES_STRICT) != 0;
    if (strict ? (ma < 0 && mb < 0) : (ma < 0 || mb < 0))
        return 0;
    if (ma >= 0)
        detail_only(out, "name", a, a->ent[ma], 1);
    else
        detail_only(out, "name", b, b->ent[mb], 0);
    return 1;
}

static int check_direction(const feat *a, const feat *b, cg_gate_result *out) {
    /* only pole p in a and only the other pole in b */
    uint64_t a0 = a->pole[0] & ~a->pole[1], a1 = a->pole[1] & ~a->pole[0];
    uint64_t b0 = b->pole[0] & ~b->pole[1], b1 = b->pole[1] & ~b->pole[0];
    uint64_t conflict = (a0 & b1) | (a1 & b0);
    if (!conflict)
        return 0;
    for (size_t k = 0; k < NPAIRS; k++)
        if (conflict & (UINT64_C(1) << k)) {
            if (out) {
                size_t o = 0;
                puts_(out->detail, sizeof out->detail, &o, "direction: opposite ends of ");
                puts_(out->detail, sizeof out->detail, &o, PAIR_NAMES[k]);
            }
            break;
        }
    return 1;
}

static const char *qw_name(unsigned m) {
    return m & QW_WHY ? "why" : m & QW_WHEN ? "when" : m & QW_WHERE ? "where" : "who";
}

static int check_qword(const feat *a, const feat *b, cg_gate_result *out) {
    unsigned oa = a->qw & ~b->qw, ob = b->qw & ~a->qw;
    if (!oa || !ob)
        return 0;
    detail_pair(out, "question word", qw_name(oa), qw_name(ob));
    return 1;
}

static const char *time_name(unsigned t) {
    if (t == 0 || t == T_PRESENT)
        return "present";
    return t & T_PAST_DAY        ? "yesterday"
           : t & T_FUTURE_DAY    ? "tomorrow"
           : t & T_PAST_PERIOD   ? "past period"
           : t & T_FUTURE_PERIOD ? "next period"
                                 : "present";
}

static int check_time(const feat *a, const feat *b, cg_gate_result *out) {
    /* a text without a time reference agrees with any */
    unsigned ta = a->tclass, tb = b->tclass;
    if ((ta & ~tb) && (tb & ~ta)) {
        detail_pair(out, "time", time_name(ta & ~tb), time_name(tb & ~ta));
        return 1;
    }
    if ((a->months & ~b->months) && (b->months & ~a->months)) {
        detail_pair(out, "time", "month", "another month");
        return 1;
    }
    if ((a->wdays & ~b->wdays) && (b->wdays & ~a->wdays)) {
        detail_pair(out, "time", "weekday", "another weekday");
        return 1;
    }
    return 0;
}

static const char *unit_name(uint64_t m) {
    for (int k = 0; k < U_N; k++)
        if (m & (UINT64_C(1) << k))
            return UNIT_NAMES[k];
    return "?";
}

static int check_units(const feat *a, const feat *b, cg_gate_result *out) {
    uint64_t oa = a->units & ~b->units, ob = b->units & ~a->units;
    if (!oa || !ob)
        return 0;
    detail_pair(out, "unit", unit_name(oa), unit_name(ob));
    return 1;
}

static int missing_code(const feat *f, const feat *o) {
    for (int k = 0; k < f->ncode; k++)
        if (!code_in(o, f->norm + f->code[k].off, f->code[k].len))
            return k;
    return -1;
}

static int check_code(const feat *a, const feat *b, cg_gate_result *out) {
    int ma = missing_code(a, b), mb = missing_code(b, a);
    if (ma < 0 || mb < 0)
        return 0;
    detail_only(out, "code", a, a->code[ma], 1);
    return 1;
}

/* A marker between positions a and b: words next to each other but for
 * the marker (span 4), or one more word before "than" (span 6: "x better
 * than y"). */
static int mark_between(const feat *f, int a, int b) {
    int lo = a < b ? a : b, hi = a < b ? b : a;
    for (int k = 0; k < f->nmark; k++)
        if (f->mark[k] > lo && f->mark[k] < hi && (hi - lo <= 4 || f->mark_than[k]))
            return 1;
    return 0;
}

/* Two shared content words, "x MARKER y" in one text and "y MARKER x" in
 * the other (next to each other but for the marker word). */
static int check_order(const feat *a, const feat *b, cg_gate_result *out) {
    if (!a->nmark || !b->nmark)
        return 0;
    int pb[MAX_CONTENT]; /* position in b of a's content word k, or -1 */
    for (int k = 0; k < a->ncw; k++) {
        pb[k] = -1;
        for (int j = 0; j < b->ncw; j++)
            if (b->cw[j] == a->cw[k]) {
                pb[k] = b->cw_pos[j];
                break;
            }
    }
    for (int x = 0; x < a->ncw; x++) {
        if (pb[x] < 0)
            continue;
        for (int y = x + 1; y < a->ncw; y++) {
            if (pb[y] < 0 || pb[y] > pb[x])
                continue; /* same order in both */
            /* "x to y" in a, "y to x" in b: at most a marker word between */
            if (a->cw_pos[y] - a->cw_pos[x] > ORDER_SPAN || pb[x] - pb[y] > ORDER_SPAN)
                continue;
            if (mark_between(a, a->cw_pos[x], a->cw_pos[y]) && mark_between(b, pb[x], pb[y])) {
                if (out) {
                    size_t o = 0;
                    puts_(out->detail, sizeof out->detail, &o, "order: the same words reversed");
                }
                return 1;
            }
        }
    }
    return 0;
}

cg_gate_reason cg_gate_check(const char *asked, size_t asked_len, const char *cached,
                             size_t cached_len, unsigned rules, cg_gate_result *out) {
    feat fa, fb;
    cg_gate_reason r = CG_GATE_PASS;
    if (out) {
        out->reason = CG_GATE_PASS;
        out->detail[0] = '\0';
    }
    extract(&fa, asked, asked_len);
    extract(&fb, cached, cached_len);
#define ON(x) (rules & CG_GATE_RULE(x))
    if (ON(CG_GATE_LENGTH) && (fa.truncated || fb.truncated)) {
        r = CG_GATE_LENGTH;
        if (out) {
            size_t o = 0;
            puts_(out->detail, sizeof out->detail, &o,
                  fa.truncated ? "the new query is longer than the gate reads"
                               : "the cached query is longer than the gate reads");
        }
    } else if (ON(CG_GATE_NUMBERS) && check_numbers(&fa, &fb, rules, out)) {
        r = CG_GATE_NUMBERS;
    } else if (ON(CG_GATE_NEGATION) && fa.neg != fb.neg) {
        r = CG_GATE_NEGATION;
        if (fa.neg)
            detail_only(out, "negation", &fa, fa.neg_at, 1);
        else
            detail_only(out, "negation", &fb, fb.neg_at, 0);
    } else if (ON(CG_GATE_QUOTES) && check_quotes(&fa, &fb, out)) {
        r = CG_GATE_QUOTES;
    } else if (ON(CG_GATE_ENTITIES) && check_entities(&fa, &fb, rules, out)) {
        r = CG_GATE_ENTITIES;
    } else if (ON(CG_GATE_DIRECTION) && check_direction(&fa, &fb, out)) {
        r = CG_GATE_DIRECTION;
    } else if (ON(CG_GATE_QWORD) && check_qword(&fa, &fb, out)) {
        r = CG_GATE_QWORD;
    } else if (ON(CG_GATE_TIME) && check_time(&fa, &fb, out)) {
        r = CG_GATE_TIME;
    } else if (ON(CG_GATE_UNITS) && check_units(&fa, &fb, out)) {
        r = CG_GATE_UNITS;
    } else if (ON(CG_GATE_CODE) && check_code(&fa, &fb, out)) {
        r = CG_GATE_CODE;
    } else if (ON(CG_GATE_ORDER) && check_order(&fa, &fb, out)) {
        r = CG_GATE_ORDER;
    }
#undef ON
    if (out)
        out->reason = r;
    return r;
}

static const char *const REASON_NAMES[CG_GATE_N] = {
    "pass",      "length", "numbers", "negation", "quotes", "entities",
    "direction", "qword",  "time",    "units",    "code",   "order",
};

const char *cg_gate_reason_name(cg_gate_reason r) {
    return (unsigned)r < CG_GATE_N ? REASON_NAMES[r] : "?";
}

int cg_gate_rules_parse(const char *list, unsigned *rules) {
    unsigned m = 0;
    const char *p = list ? list : "";
    while (*p) {
        size_t n = strcspn(p, ",");
        int ok = 0;
        if (n == 7 && memcmp(p, "default", 7) == 0)
            m |= CG_GATE_DEFAULT_RULES, ok = 1;
        else if (n == 3 && memcmp(p, "all", 3) == 0)
            m |= CG_GATE_ALL_RULES, ok = 1;
        else if (n == 4 && memcmp(p, "none", 4) == 0)
            ok = 1;
        for (int r = 1; r < CG_GATE_N && !ok; r++)
            if (strlen(REASON_NAMES[r]) == n && memcmp(p, REASON_NAMES[r], n) == 0)
                m |= CG_GATE_RULE(r), ok = 1;
        if (!ok && n)
            return -1;
        p += n;
        if (*p == ',')
            p++;
    }
    *rules = m;
    return 0;
}
