/* gate: the semantic cache's second gate (see gate.h).
 *
 * Owns: the rule-by-rule comparison of two texts' features (numbers,
 * negation, quotes, names, direction, question words, time, units, code,
 * order, content words, swapped roles, deixis, person, mentions), the verdict
 * and its audit detail, the per-rule outcome mask, and the rule names and
 * their parser. The features themselves come from gate_extract.c (over the
 * normalised text of gate_text.c, with the word lists of gate_words.c);
 * gate_internal.h is what these files share.
 */
#include "cache/gate.h"

#include <stdint.h>
#include <string.h>

#include "cache/gate_internal.h"

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
    return gate_cp_class(cp_at(f, k, &l)) == C_WORD;
}

static int word_at(const feat *f, size_t i) {
    size_t l;
    return i < f->n && gate_cp_class(cp_at(f, i, &l)) == C_WORD;
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
    for (size_t k = 0; k < gate_npairs; k++)
        if (conflict & (UINT64_C(1) << k)) {
            if (out) {
                size_t o = 0;
                puts_(out->detail, sizeof out->detail, &o, "direction: opposite ends of ");
                puts_(out->detail, sizeof out->detail, &o, gate_pair_name(k));
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
            return gate_unit_name(k);
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

/* Bytes of span at of f to print, at most max, cut at a UTF-8 boundary. */
static size_t cut_len(const feat *f, span at, size_t max) {
    size_t m = at.len > max ? max : at.len;
    while (m < at.len && m > 0 && ((unsigned char)f->norm[at.off + m] & 0xC0u) == 0x80u)
        m--;
    return m;
}

/* Index of the first content word of f that o lacks, or -1. */
static int missing_lex(const feat *f, const feat *o) {
    for (int k = 0; k < f->nlex; k++) {
        int found = 0;
        for (int j = 0; j < o->nlex && !found; j++)
            found = o->lex[j] == f->lex[k];
        if (!found)
            return k;
    }
    return -1;
}

static int check_words(const feat *a, const feat *b, cg_gate_result *out) {
    if (a->lex_over || b->lex_over) {
        if (out) {
            size_t o = 0;
            puts_(out->detail, sizeof out->detail, &o, "words: too many to compare");
        }
        return 1;
    }
    int ma = missing_lex(a, b);
    if (ma >= 0) {
        detail_only(out, "word", a, a->lex_at[ma], 1);
        return 1;
    }
    int mb = missing_lex(b, a);
    if (mb >= 0) {
        detail_only(out, "word", b, b->lex_at[mb], 0);
        return 1;
    }
    return 0;
}

/* The ids (a bit each) of f's relation words strictly between word
 * indexes lo and hi. */
static uint32_t rel_between(const feat *f, int lo, int hi) {
    uint32_t m = 0;
    for (int k = 0; k < f->nrel; k++)
        if (f->rel_pos[k] > lo && f->rel_pos[k] < hi)
            m |= UINT32_C(1) << (f->rel_id[k] & 31u);
    return m;
}

/* Whether f has the words x, then f2's words fi+1..fi+m, then y, in a row
 * (word hashes). */
static int has_frame(const feat *f, uint64_t x, const feat *f2, int fi, int m, uint64_t y) {
    for (int p = 0; p + m + 1 < f->nseq; p++) {
        if (f->seq[p] != x || f->seq[p + m + 1] != y)
            continue;
        int same = 1;
        for (int k = 1; k <= m && same; k++)
            same = f->seq[p + k] == f2->seq[fi + k];
        if (same)
            return 1;
    }
    return 0;
}

/* Exchanged words: "x FRAME y" in a and "y FRAME x" in b, and neither text
 * has the other order too (so a text always matches itself); x and y
 * different content words, FRAME the same 1..FRAME_MAX words in both (a
 * content word among them, no symmetric word): "Poles dislike Russians" /
 * "Russians dislike Poles", "guys like introvert girls" / "girls like
 * introvert guys". Index in a of x (y follows the frame), or -1; *len the
 * frame's length. */
static int exchanged(const feat *a, const feat *b, int *len) {
    for (int i = 0; i < a->nseq; i++) {
        if (!(a->seq_fl[i] & SQ_CONTENT))
            continue;
        int has_content = 0;
        for (int m = 1; m <= FRAME_MAX && i + m + 1 < a->nseq; m++) {
            uint8_t fl = a->seq_fl[i + m];
            if (fl & SQ_SYMMETRIC)
                break; /* and every longer frame holds it too */
            has_content |= fl & SQ_CONTENT;
            int j = i + m + 1; /* y */
            uint64_t x = a->seq[i], y = a->seq[j];
            if (!has_content || !(a->seq_fl[j] & SQ_CONTENT) || x == y)
                continue;
            if (has_frame(b, y, a, i, m, x) && !has_frame(b, x, a, i, m, y) &&
                !has_frame(a, y, a, i, m, x)) {
                *len = m;
                return i;
            }
        }
    }
    return -1;
}

static void detail_swap(cg_gate_result *out, const feat *f, span sx, span sy) {
    if (!out)
        return;
    size_t o = 0;
    char *d = out->detail;
    size_t cap = sizeof out->detail;
    puts_(d, cap, &o, "swap: \"");
    put(d, cap, &o, f->norm + sx.off, cut_len(f, sx, 30));
    puts_(d, cap, &o, "\" and \"");
    put(d, cap, &o, f->norm + sy.off, cut_len(f, sy, 30));
    puts_(d, cap, &o, "\" in reversed roles");
}

/* Two content words both texts share, x before y in a and y before x in b,
 * with the same relation word strictly between them in each text: "x of y"
 * and "y of x". */
static int check_swap(const feat *a, const feat *b, cg_gate_result *out) {
    int16_t pb[MAX_LEX]; /* index in b of a's content word k, or -1 */
    for (int k = 0; k < a->nlex; k++) {
        pb[k] = -1;
        for (int j = 0; j < b->nlex && pb[k] < 0; j++)
            if (b->lex[j] == a->lex[k])
                pb[k] = (int16_t)j;
    }
    for (int x = 0; x < a->nlex; x++) {
        if (pb[x] < 0)
            continue;
        for (int y = x + 1; y < a->nlex; y++) {
            if (pb[y] < 0 || b->lex_pos[pb[y]] > b->lex_pos[pb[x]])
                continue; /* not shared, or the same order in both */
            uint32_t rel_a = rel_between(a, a->lex_pos[x], a->lex_pos[y]);
            if (rel_a && (rel_a & rel_between(b, b->lex_pos[pb[y]], b->lex_pos[pb[x]]))) {
                detail_swap(out, a, a->lex_at[x], a->lex_at[y]);
                return 1;
            }
        }
    }
    int m, i = exchanged(a, b, &m);
    if (i >= 0) {
        detail_swap(out, a, a->seq_at[i], a->seq_at[i + m + 1]);
        return 1;
    }
    return 0;
}

static int check_deixis(const feat *a, const feat *b, cg_gate_result *out) {
    if (!a->deixis && !b->deixis)
        return 0;
    if (a->deixis)
        detail_only(out, "points outside the text:", a, a->deix_at, 1);
    else
        detail_only(out, "points outside the text:", b, b->deix_at, 0);
    return 1;
}

/* The asker in one text (me, myself) and someone else in the other
 * (someone, anyone, others, ...), neither text having both kinds. */
static int check_person(const feat *a, const feat *b, cg_gate_result *out) {
    int a_self = a->self_ref && !a->other_ref, a_other = a->other_ref && !a->self_ref;
    int b_self = b->self_ref && !b->other_ref, b_other = b->other_ref && !b->self_ref;
    if (a_self && b_other && !b->self_ref) {
        detail_only(out, "person: the asker,", a, a->self_at, 1);
        return 1;
    }
    if (a_other && b_self && !a->self_ref) {
        detail_only(out, "person: someone else,", a, a->other_at, 1);
        return 1;
    }
    return 0;
}

/* Times content word h (its light stem's hash) occurs among f's words
 * (the first MAX_SEQ). */
static int mentions_of(const feat *f, uint64_t h) {
    int c = 0;
    for (int k = 0; k < f->nseq; k++)
        c += f->seq[k] == h && (f->seq_fl[k] & SQ_CONTENT);
    return c;
}

/* Two content words both texts use, one more often in a and the other more
 * often in b (light stems, as the words rule compares them). Texts with
 * more words than the gate keeps in order are not compared. */
static int check_mentions(const feat *a, const feat *b, cg_gate_result *out) {
    if (a->seq_over || b->seq_over)
        return 0;
    int more_a = -1, more_b = -1; /* index in a of such a word */
    for (int i = 0; i < a->nseq && (more_a < 0 || more_b < 0); i++) {
        if (!(a->seq_fl[i] & SQ_CONTENT))
            continue;
        int first = 1;
        for (int k = 0; k < i && first; k++)
            first = a->seq[k] != a->seq[i];
        if (!first)
            continue;
        int ca = mentions_of(a, a->seq[i]), cb = mentions_of(b, a->seq[i]);
        if (cb == 0)
            continue; /* not shared: the words rule's */
        if (ca > cb && more_a < 0)
            more_a = i;
        else if (cb > ca && more_b < 0)
            more_b = i;
    }
    if (more_a < 0 || more_b < 0)
        return 0;
    if (out) {
        size_t o = 0;
        char *d = out->detail;
        size_t cap = sizeof out->detail;
        span x = a->seq_at[more_a], y = a->seq_at[more_b];
        puts_(d, cap, &o, "mentions: \"");
        put(d, cap, &o, a->norm + x.off, cut_len(a, x, 30));
        puts_(d, cap, &o, "\" more in the new query, \"");
        put(d, cap, &o, a->norm + y.off, cut_len(a, y, 30));
        puts_(d, cap, &o, "\" more in the cached");
    }
    return 1;
}

/* The verdict on two extracted texts under `rules` (reads a and b only). */
static cg_gate_reason judge(feat *a, feat *b, unsigned rules, cg_gate_result *out) {
    cg_gate_reason r = CG_GATE_PASS;
    if (out) {
        out->reason = CG_GATE_PASS;
        out->detail[0] = '\0';
    }
#define ON(x) (rules & CG_GATE_RULE(x))
    if (ON(CG_GATE_LENGTH) && (a->truncated || b->truncated)) {
        r = CG_GATE_LENGTH;
        if (out) {
            size_t o = 0;
            puts_(out->detail, sizeof out->detail, &o,
                  a->truncated ? "the new query is longer than the gate reads"
                               : "the cached query is longer than the gate reads");
        }
    } else if (ON(CG_GATE_NUMBERS) && check_numbers(a, b, rules, out)) {
        r = CG_GATE_NUMBERS;
    } else if (ON(CG_GATE_NEGATION) && a->neg != b->neg) {
        r = CG_GATE_NEGATION;
        if (a->neg)
            detail_only(out, "negation", a, a->neg_at, 1);
        else
            detail_only(out, "negation", b, b->neg_at, 0);
    } else if (ON(CG_GATE_QUOTES) && check_quotes(a, b, out)) {
        r = CG_GATE_QUOTES;
    } else if (ON(CG_GATE_ENTITIES) && check_entities(a, b, rules, out)) {
        r = CG_GATE_ENTITIES;
    } else if (ON(CG_GATE_DIRECTION) && check_direction(a, b, out)) {
        r = CG_GATE_DIRECTION;
    } else if (ON(CG_GATE_QWORD) && check_qword(a, b, out)) {
        r = CG_GATE_QWORD;
    } else if (ON(CG_GATE_TIME) && check_time(a, b, out)) {
        r = CG_GATE_TIME;
    } else if (ON(CG_GATE_UNITS) && check_units(a, b, out)) {
        r = CG_GATE_UNITS;
    } else if (ON(CG_GATE_CODE) && check_code(a, b, out)) {
        r = CG_GATE_CODE;
    } else if (ON(CG_GATE_ORDER) && check_order(a, b, out)) {
        r = CG_GATE_ORDER;
    } else if (ON(CG_GATE_WORDS) && check_words(a, b, out)) {
        r = CG_GATE_WORDS;
    } else if (ON(CG_GATE_SWAP) && check_swap(a, b, out)) {
        r = CG_GATE_SWAP;
    } else if (ON(CG_GATE_DEIXIS) && check_deixis(a, b, out)) {
        r = CG_GATE_DEIXIS;
    } else if (ON(CG_GATE_PERSON) && check_person(a, b, out)) {
        r = CG_GATE_PERSON;
    } else if (ON(CG_GATE_MENTIONS) && check_mentions(a, b, out)) {
        r = CG_GATE_MENTIONS;
    }
#undef ON
    if (out)
        out->reason = r;
    return r;
}

cg_gate_reason cg_gate_check(const char *asked, size_t asked_len, const char *cached,
                             size_t cached_len, unsigned rules, cg_gate_result *out) {
    return cg_gate_check_all(asked, asked_len, cached, cached_len, rules, out, NULL);
}

cg_gate_reason cg_gate_check_all(const char *asked, size_t asked_len, const char *cached,
                                 size_t cached_len, unsigned rules, cg_gate_result *out,
                                 unsigned *fails) {
    feat fa, fb;
    gate_extract(&fa, asked, asked_len);
    gate_extract(&fb, cached, cached_len);
    cg_gate_reason r = judge(&fa, &fb, rules, out);
    if (fails) {
        unsigned m = 0;
        for (int k = 1; k < CG_GATE_N; k++)
            if (judge(&fa, &fb, CG_GATE_RULE(k), NULL) != CG_GATE_PASS)
                m |= CG_GATE_RULE(k);
        *fails = m;
    }
    return r;
}

static const char *const REASON_NAMES[CG_GATE_N] = {
    "pass",  "length", "numbers", "negation", "quotes", "entities", "direction", "qword",    "time",
    "units", "code",   "order",   "words",    "swap",   "deixis",   "person",    "mentions",
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
