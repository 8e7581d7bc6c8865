/* gate_extract: per-text feature extraction for the second gate (gate.h).
 *
 * Owns: reading one normalised text (gate_text.c) into its feat record:
 * numbers (digit runs and number words), negation (English words and
 * Korean syllables), capitalised names, direction poles, question words,
 * time references, units and currency symbols, quoted strings, code
 * tokens, the content words and direction markers of the order rule, the
 * light-stemmed content words and relation words of the words and swap
 * rules, and deictic words (this, these, those, the following) that point
 * outside the text.
 *
 * Korean negation, by syllable so that common words are not caught by a
 * substring (안녕 hello, 안전 safety, 제안 proposal, 주말 weekend, 가지마다
 * every branch):
 *   않 or 없 anywhere in a word (they occur only in 않다 / 없다 forms);
 *   안 as a word of its own, or a word starting 안 + 되/돼/됐/될/해/했/할/
 *     함/좋/맞/들/와/먹 (안돼, 안해, 안좋아);
 *   못 starting a word (못 가요, 못해);
 *   a word starting 아니/아닌/아님/아냐 (아니다, 아닌데);
 *   -지 마/말/맙 (prohibition): a syllable 지 after another syllable, then
 *     마 (end of word or 마세요/마라/마요/마십시오/마시오), 말 (말고/말아/말라/
 *     말자 or alone) or 맙 (맙시다), in one word or the next.
 */
#include <stdint.h>
#include <string.h>

#include "cache/gate_internal.h"

static void add_num(feat *f, const char *v, size_t vlen, size_t off, size_t len, int soft) {
    if (f->nnum >= MAX_NUMS)
        return;
    num_t *x = &f->num[f->nnum++];
    x->h = gate_fnv(v, vlen);
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

/* Words written in capitals (two or more ASCII letters, every one upper
 * case: US, IT) are names, never function words. */
static int all_caps(const feat *f, size_t ws, size_t wl) {
    size_t letters = 0;
    for (size_t k = ws; k < ws + wl; k++) {
        if (!is_lower(f->norm[k]))
            continue;
        if (!is_cap(f, k))
            return 0;
        letters++;
    }
    return letters >= 2;
}

/* The function-word class (FW_ bits) of a contraction's first part: i'm,
 * you're, we've, they'll, i'd. 0 for anything else. */
static unsigned contraction_class(const char *w, size_t dl) {
    const char *ap = memchr(w, '\'', dl);
    if (!ap || ap == w)
        return 0;
    size_t head = (size_t)(ap - w), tail = dl - head - 1;
    const char *t = ap + 1;
    if (!((tail == 1 && (t[0] == 'm' || t[0] == 'd')) ||
          (tail == 2 &&
           (memcmp(t, "re", 2) == 0 || memcmp(t, "ve", 2) == 0 || memcmp(t, "ll", 2) == 0))))
        return 0;
    int hits[DICT_HITS];
    unsigned fw = 0;
    int nh = gate_dict_lookup(w, head, hits);
    for (int q = 0; q < nh; q++)
        if (gate_dict[hits[q]].kind == K_FUNC)
            fw |= gate_dict[hits[q]].val;
    return fw;
}

/* Whether b[0..n) ends with suffix x after at least `before` bytes. */
static int ends(const char *b, size_t n, const char *x, size_t before) {
    size_t l = strlen(x);
    return n >= l + before && memcmp(b + n - l, x, l) == 0;
}

/* British spellings folded to the American ones, so that the words rule
 * takes the two spellings of a word for one word: -our- to -or- after 3 or
 * more letters (colour, favourite, behaviour, neighbourhood; not four,
 * tour, flour, source), and these endings after enough letters to leave
 * short words alone: -ise -ised -ising -iser -isation to -ize..., -yse
 * -ysed -ysing to -yze... (organise, analyse; not rise, wise, noise),
 * -tre to -ter (centre, metre, theatre), -elled -elling -eller to
 * -eled... (travelled, modelling; not felled, seller), -ogue to -og
 * (catalogue, dialogue; not rogue, vogue), -ence to -ense after 3 letters
 * (defence, licence, offence; not fence, hence). Each fold only shortens
 * or keeps the length. The length limits leave alone the short words
 * whose fold is another word (tour / tor, flour / flor, prise / prize);
 * -bre is not folded (timbre / timber). Returns the new length. */
static size_t spelling_fold(char *b, size_t n) {
    static const struct {
        const char *from, *to;
        uint8_t before;
    } END[] = {
        {"isation", "ization", 3}, {"ising", "izing", 3}, {"ised", "ized", 3},
        {"iser", "izer", 3},       {"ise", "ize", 3},     {"ysing", "yzing", 3},
        {"ysed", "yzed", 3},       {"yse", "yze", 3},     {"tre", "ter", 2},
        {"elling", "eling", 2},    {"elled", "eled", 2},  {"eller", "eler", 2},
        {"ogue", "og", 4},         {"ence", "ense", 3},
    };
    for (size_t i = 3; i + 3 <= n; i++)
        if (b[i] == 'o' && b[i + 1] == 'u' && b[i + 2] == 'r') {
            memmove(b + i + 1, b + i + 2, n - i - 2);
            n--;
            break;
        }
    for (size_t k = 0; k < sizeof END / sizeof END[0]; k++)
        if (ends(b, n, END[k].from, END[k].before)) {
            size_t fl = strlen(END[k].from), tl = strlen(END[k].to);
            memcpy(b + n - fl, END[k].to, tl);
            n = n - fl + tl;
            break;
        }
    return n;
}

/* Hash of a content word's light stem: apostrophes dropped, then a plural
 * ending (-ies to -y; -ches -shes -sses -xes to -ch -sh -ss -x; -s, but not
 * -ss -us -is) removed, then a British spelling folded (spelling_fold). */
static uint64_t lex_hash(const char *w, size_t dl) {
    char b[WORD_MAX * 4];
    size_t n = 0;
    if (dl > sizeof b - 1)
        return gate_fnv(w, dl);
    for (size_t k = 0; k < dl; k++)
        if (w[k] != '\'')
            b[n++] = w[k];
    if (n > 4 && memcmp(b + n - 3, "ies", 3) == 0) {
        n -= 2;
        b[n - 1] = 'y';
    } else if (n > 4 && (memcmp(b + n - 4, "ches", 4) == 0 || memcmp(b + n - 4, "shes", 4) == 0 ||
                         memcmp(b + n - 4, "sses", 4) == 0 || memcmp(b + n - 3, "xes", 3) == 0)) {
        n -= 2;
    } else if (n > 3 && b[n - 1] == 's' && b[n - 2] != 's' && b[n - 2] != 'u' && b[n - 2] != 'i') {
        n -= 1;
    }
    n = spelling_fold(b, n);
    return gate_fnv(b, n);
}

/* Adds a content word to the words and swap rules' list (first occurrence
 * only). */
static void add_lex(feat *f, const char *w, size_t dl, size_t ws, size_t wl, int word_no) {
    uint64_t h = lex_hash(w, dl);
    for (int k = 0; k < f->nlex; k++)
        if (f->lex[k] == h)
            return;
    if (f->nlex >= MAX_LEX) {
        f->lex_over = 1;
        return;
    }
    int k = f->nlex++;
    f->lex[k] = h;
    f->lex_pos[k] = (uint16_t)word_no;
    f->lex_at[k].off = (uint16_t)ws;
    f->lex_at[k].len = (uint16_t)wl;
}

/* Symmetric words: "x and y" asks what "y and x" asks (swap rule). */
static int symmetric_word(const char *w, size_t dl) {
    static const char *const T[] = {"and", "or", "vs", "versus", "between"};
    for (size_t k = 0; k < sizeof T / sizeof T[0]; k++)
        if (strlen(T[k]) == dl && memcmp(T[k], w, dl) == 0)
            return 1;
    return 0;
}

/* Person rule: 1 for a word meaning the asker (me, myself), 2 for someone
 * else (someone, somebody, anyone, anybody, others), else 0. */
static int person_class(const char *w, size_t dl) {
    static const char *const SELF[] = {"me", "myself"};
    static const char *const OTHER[] = {"someone", "somebody", "anyone", "anybody", "others"};
    for (size_t k = 0; k < sizeof SELF / sizeof SELF[0]; k++)
        if (strlen(SELF[k]) == dl && memcmp(SELF[k], w, dl) == 0)
            return 1;
    for (size_t k = 0; k < sizeof OTHER / sizeof OTHER[0]; k++)
        if (strlen(OTHER[k]) == dl && memcmp(OTHER[k], w, dl) == 0)
            return 2;
    return 0;
}

/* A word after this/these/those that makes it a time expression (this
 * week, this morning), not a pointer at something outside the text. */
static int deixis_time(const char *w, size_t dl, int period) {
    static const char *const T[] = {"time",      "times",  "day",  "morning", "evening",
                                    "afternoon", "spring", "fall", "autumn"};
    if (period)
        return 1;
    for (size_t k = 0; k < sizeof T / sizeof T[0]; k++)
        if (strlen(T[k]) == dl && memcmp(T[k], w, dl) == 0)
            return 1;
    return 0;
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
    int deix_pending = 0; /* this/these/those just before */
    span deix_w = {0, 0}; /* that word */
    size_t deix_end = 0;  /* end of the last deictic word; 0: none */
    size_t i = 0;
    while (i < n) {
        size_t l;
        int32_t cp = cp_at(f, i, &l);
        int cls = gate_cp_class(cp);
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
            if (gate_cp_class(c) == C_WORD) {
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
        unsigned fw = 0; /* K_FUNC bits */
        int deix = 0, period = 0, numword = 0;
        int hits[DICT_HITS];
        if (us > 0 && us < dl) {
            int nh = gate_dict_lookup(w + us, dl - us, hits);
            for (int q = 0; q < nh; q++)
                if (gate_dict[hits[q]].kind == K_UNIT)
                    f->units |= UINT64_C(1) << gate_dict[hits[q]].val;
        }
        {
            int nh = gate_dict_lookup(w, dl, hits);
            for (int q = 0; q < nh; q++) {
                const dword *d = &gate_dict[hits[q]];
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
                case K_FUNC:
                    fw |= d->val;
                    break;
                case K_DEIX:
                    deix = 1;
                    break;
                case K_NUM:
                case K_NUM_SOFT:
                    numword = 1;
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
                    numword = 1;
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
                    period = 1;
                    if (rel && rel_age <= 2)
                        f->tclass |= (unsigned)rel;
                    break;
                case K_AGO:
                    f->tclass |= T_PAST_PERIOD;
                    break;
                case K_MONTH:
                    period = 1;
                    f->months |= 1u << d->val;
                    break;
                case K_MARCH:
                    if (cap)
                        f->months |= 1u << d->val;
                    break;
                case K_WDAY:
                    period = 1;
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
        /* words and swap rules: content words, relation words */
        if (all_caps(f, ws, dl))
            fw = 0;
        else
            fw |= contraction_class(w, dl);
        if ((fw & FW_REL) && f->nrel < MAX_RELW) {
            f->rel_pos[f->nrel] = (uint16_t)word_no;
            f->rel_id[f->nrel++] = (uint8_t)(fw >> 2);
        }
        {
            int has_digit = 0;
            for (size_t k = 0; k < dl && !has_digit; k++)
                has_digit = is_digit(w[k]);
            /* numbers and negation have rules of their own */
            int content = !(fw & FW_FUNC) && !neg && !numword && !has_digit;
            if (content)
                add_lex(f, w, dl, ws, wl, word_no);
            if (f->nseq >= MAX_SEQ)
                f->seq_over = 1;
            if (f->nseq < MAX_SEQ) {
                int k = f->nseq++;
                f->seq[k] = lex_hash(w, dl);
                f->seq_at[k].off = (uint16_t)ws;
                f->seq_at[k].len = (uint16_t)wl;
                f->seq_fl[k] = (uint8_t)((content ? SQ_CONTENT : 0) |
                                         (symmetric_word(w, dl) ? SQ_SYMMETRIC : 0));
            }
        }
        /* person rule: the asker, or someone else (not ALL-CAPS: ME is Maine) */
        if (!all_caps(f, ws, dl)) {
            int who = person_class(w, dl);
            if (who == 1 && !f->self_ref) {
                f->self_ref = 1;
                f->self_at.off = (uint16_t)ws;
                f->self_at.len = (uint16_t)wl;
            } else if (who == 2 && !f->other_ref) {
                f->other_ref = 1;
                f->other_at.off = (uint16_t)ws;
                f->other_at.len = (uint16_t)wl;
            }
        }
        /* deixis rule: "this X" unless X is a time period; "the following" */
        if (deix_pending && !deixis_time(w, dl, period)) {
            deix_end = (size_t)deix_w.off + deix_w.len;
            f->deix_at = deix_w;
        }
        deix_pending = 0;
        if (deix) {
            deix_pending = 1;
            deix_w.off = (uint16_t)ws;
            deix_w.len = (uint16_t)wl;
        }
        if (dl == 9 && memcmp(w, "following", 9) == 0 && word_is(s, w1, "the")) {
            deix_end = we;
            f->deix_at.off = w1.off;
            f->deix_at.len = (uint16_t)(we - w1.off);
        }
        if (mark && f->nmark < MAX_MARKS)
            f->mark_than[f->nmark] = (uint8_t)(mark - 1), f->mark[f->nmark++] = 2 * word_no;
        else if (!stop && f->ncw < MAX_CONTENT) {
            uint64_t h = gate_fnv(w, dl);
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
    if (deix_pending) { /* "What is this?" */
        deix_end = (size_t)deix_w.off + deix_w.len;
        f->deix_at = deix_w;
    }
    /* a pointer at something outside the text: nothing after the last
     * deictic word introduces what it points at (a colon, a new line, a
     * quote or code) */
    if (deix_end) {
        f->deixis = 1;
        for (size_t k = deix_end; k < n && f->deixis; k++)
            if (s[k] == ':' || s[k] == '\n' || s[k] == '"' || s[k] == '`')
                f->deixis = 0;
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

void gate_extract(feat *f, const char *text, size_t len) {
    f->nnum = f->nquote = f->nent = f->ncode = 0;
    f->neg = 0;
    f->n_alpha_words = f->n_cap_words = 0;
    f->pole[0] = f->pole[1] = 0;
    f->qw = f->tclass = f->months = f->wdays = 0;
    f->units = 0;
    f->ncw = f->nmark = 0;
    f->nlex = f->lex_over = f->nrel = 0;
    f->deixis = 0;
    f->deix_at.off = f->deix_at.len = 0;
    f->nseq = f->seq_over = 0;
    f->self_ref = f->other_ref = 0;
    f->self_at.off = f->self_at.len = f->other_at.off = f->other_at.len = 0;
    gate_normalise(f, text ? text : "", text ? len : 0);
    scan_words(f);
    scan_numbers(f);
    scan_quotes(f);
    scan_code(f);
}
