/* test_policy_ref: the write guard's fast reader against the reference.
 *
 * Owns: identical decisions of cg_cache_guard_check (plain runs of strings
 * read 8 bytes at a time, white space skipped by a one-byte test first, keys
 * compared with compile-time lengths) and of the reference reader below (the
 * guard as it read byte by byte before, kept verbatim as the oracle), for
 * both APIs, with and without deny patterns (so the extracted answer text
 * must be identical too) and store_tool_calls, over: every JSON file under
 * tests/, responses built from the arena-hard answers (../shared/data) with
 * every finish / stop reason, refusals, tool calls, escapes and non-ASCII
 * text, and many mutations of each (truncation, one byte replaced by a
 * structural, control, escape or non-ASCII byte, inserted escapes, bad
 * UTF-8, white space).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cache/policy.h"
#include "core/buf.h"
#include "core/hash.h"

#include "walk_files.h"

#undef skip /* cmocka's; the reference has its own */

/* --- the reference: the guard's reader as it was (byte by byte) ------------- */

/* --- a small JSON reader for the guard --------------------------------------
 * The guard reads a complete response body without building a tree (jansson
 * costs ~200 instructions per byte here, more than the rest of a miss): one
 * validating pass that keeps only what the rules look at. */

typedef struct jr {
    const char *p, *end;
    int bad;
} jr;

#define DEPTH_MAX 256

static void ws(jr *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
        j->p++;
}

static int eat(jr *j, char c) {
    ws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return 1;
    }
    return 0;
}

static int hex4(const char *p, const char *end, unsigned *out) {
    unsigned v = 0;
    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int h = cg_hexval(p[i]);
        if (h < 0)
            return -1;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return 0;
}

static void put_utf8(cg_buf *b, unsigned cp) {
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    cg_buf_append(b, u, n);
}

/* A byte a string can just run over: printable ASCII other than the
 * closing quote and an escape (not a control character, not the start of a
 * multi-byte UTF-8 sequence). */
static inline int plain(unsigned char c) {
    return (unsigned char)(c - 0x20) < 0x60 && c != '"' && c != '\\';
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs,
 * no surrogates, at most U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *p, size_t avail) {
    unsigned c = p[0], cp;
    size_t n;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp < 0xe000))
        return 0;
    return n;
}

/* A string at p (after optional space): its raw contents [*s, *e) and, when
 * out is set, its unescaped text appended to out. 0, or -1 (bad JSON). */
static int string(jr *j, const char **s, const char **e, cg_buf *out) {
    ws(j);
    if (j->p >= j->end || *j->p != '"')
        return j->bad = -1;
    const char *p = ++j->p, *run = p;
    for (;;) {
        while (p < j->end && plain((unsigned char)*p)) /* a run of plain ASCII */
            p++;
        if (p >= j->end || *p == '"')
            break;
        unsigned char c = (unsigned char)*p;
        if (c < 0x20)
            return j->bad = -1;
        if (c >= 0x80) { /* well-formed UTF-8 only, as jansson (and a replay) needs */
            size_t n = utf8_len((const unsigned char *)p, (size_t)(j->end - p));
            if (!n)
                return j->bad = -1;
            p += n;
            continue;
        }
        if (c != '\\') {
            p++;
            continue;
        }
        if (out)
            cg_buf_append(out, run, (size_t)(p - run));
        if (++p >= j->end)
            return j->bad = -1;
        unsigned cp;
        switch (*p) {
        case '"':
        case '\\':
        case '/':
            if (out)
                cg_buf_append(out, p, 1);
            p++;
            break;
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            if (out)
                cg_buf_append(out, *p == 'n' ? "\n" : *p == 't' ? "\t" : *p == 'r' ? "\r" : " ", 1);
            p++;
            break;
        case 'u':
            if (hex4(p + 1, j->end, &cp) != 0 || cp == 0) /* \\u0000: refused, as jansson does */
                return j->bad = -1;
            p += 5;
            if (cp >= 0xdc00 && cp < 0xe000)
                return j->bad = -1; /* a lone low surrogate */
            if (cp >= 0xd800 && cp < 0xdc00) {
                unsigned lo;
                if (j->end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
                    hex4(p + 2, j->end, &lo) != 0 || lo < 0xdc00 || lo >= 0xe000)
                    return j->bad = -1; /* a high surrogate without its low half */
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            }
            if (out)
                put_utf8(out, cp);
            break;
        default:
            return j->bad = -1;
        }
        run = p;
    }
    if (p >= j->end)
        return j->bad = -1;
    if (out)
        cg_buf_append(out, run, (size_t)(p - run));
    if (s)
        *s = j->p;
    if (e)
        *e = p;
    j->p = p + 1;
    return 0;
}

static int is_key(const char *s, const char *e, const char *k) {
    size_t n = strlen(k);
    return (size_t)(e - s) == n && memcmp(s, k, n) == 0;
}

static int literal(jr *j, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0)
        return j->bad = -1;
    j->p += n;
    return 0;
}

static int number(jr *j) {
    const char *p = j->p;
    if (p < j->end && *p == '-')
        p++;
    const char *d = p;
    while (p < j->end && *p >= '0' && *p <= '9')
        p++;
    if (p == d || (*d == '0' && p - d > 1))
        return j->bad = -1;
    if (p < j->end && *p == '.') {
        d = ++p;
        while (p < j->end && *p >= '0' && *p <= '9')
            p++;
        if (p == d)
            return j->bad = -1;
    }
    if (p < j->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < j->end && (*p == '+' || *p == '-'))
            p++;
        d = p;
        while (p < j->end && *p >= '0' && *p <= '9')
            p++;
        if (p == d)
            return j->bad = -1;
    }
    j->p = p;
    return 0;
}

/* Skips (and validates) any value; its text goes to out when set. */
static int skip(jr *j, int depth, cg_buf *out) {
    ws(j);
    if (j->p >= j->end || depth > DEPTH_MAX)
        return j->bad = -1;
    const char *start = j->p;
    int rc = 0;
    switch (*j->p) {
    case '"':
        rc = string(j, NULL, NULL, NULL);
        break;
    case '{':
        j->p++;
        if (eat(j, '}'))
            break;
        do {
            if (string(j, NULL, NULL, NULL) || !eat(j, ':') || skip(j, depth + 1, NULL))
                return j->bad = -1;
        } while (eat(j, ','));
        rc = eat(j, '}') ? 0 : (j->bad = -1);
        break;
    case '[':
        j->p++;
        if (eat(j, ']'))
            break;
        do {
            if (skip(j, depth + 1, NULL))
                return j->bad = -1;
        } while (eat(j, ','));
        rc = eat(j, ']') ? 0 : (j->bad = -1);
        break;
    case 't':
        rc = literal(j, "true");
        break;
    case 'f':
        rc = literal(j, "false");
        break;
    case 'n':
        rc = literal(j, "null");
        break;
    default:
        rc = number(j);
    }
    if (j->bad)
        return -1;
    if (out) {
        cg_buf_append(out, start, (size_t)(j->p - start));
        cg_buf_append(out, "\n", 1);
    }
    (void)rc;
    return 0;
}

/* Iterates an object's members: *k, *ke = the key; the value is next. 1 while
 * there is a member, 0 at the end, -1 on bad JSON. Call with *first = 1. */
static int member(jr *j, int *first, const char **k, const char **ke) {
    if (*first) {
        *first = 0;
        if (!eat(j, '{'))
            return j->bad = -1;
        if (eat(j, '}'))
            return 0;
    } else if (!eat(j, ',')) {
        return eat(j, '}') ? 0 : (j->bad = -1);
    }
    if (string(j, k, ke, NULL) || !eat(j, ':'))
        return j->bad = -1;
    return 1;
}

/* The same for an array's elements. */
static int element(jr *j, int *first) {
    if (*first) {
        *first = 0;
        if (!eat(j, '['))
            return j->bad = -1;
        return eat(j, ']') ? 0 : 1;
    }
    if (eat(j, ','))
        return 1;
    return eat(j, ']') ? 0 : (j->bad = -1);
}

/* [v, e) is an array with at least one element. */
static int non_empty_array(const char *v, const char *e) {
    if (v >= e || *v != '[')
        return 0;
    for (v++; v < e && (*v == ' ' || *v == '\n' || *v == '\r' || *v == '\t'); v++)
        ;
    return v < e && *v != ']';
}

static int peek_null(jr *j) {
    ws(j);
    return j->p < j->end && *j->p == 'n';
}

/* A string value (its raw text, cut to cap) or null (-> ""). 0 or -1. */
static int str_is(jr *j, char *val, size_t cap) {
    const char *s, *e;
    val[0] = '\0';
    if (peek_null(j))
        return literal(j, "null");
    if (string(j, &s, &e, NULL))
        return -1;
    size_t n = (size_t)(e - s) < cap - 1 ? (size_t)(e - s) : cap - 1;
    memcpy(val, s, n);
    val[n] = '\0';
    return 0;
}

/* OpenAI chat completion: every choice must end with "stop", carry no
 * refusal, and call no tool unless configured. */
static cg_guard_reason check_openai(const cg_cache_guard *g, jr *j, cg_buf *text) {
    cg_guard_reason why = CG_GUARD_OK;
    int seen_choices = 0, have_usage = 0, top = 1, r;
    const char *k, *ke;
    while ((r = member(j, &top, &k, &ke)) == 1) {
        if (!is_key(k, ke, "choices")) {
            if (is_key(k, ke, "usage")) {
                ws(j);
                have_usage = j->p < j->end && *j->p == '{';
            }
            if (skip(j, 1, NULL))
                return CG_GUARD_INVALID;
            continue;
        }
        int first = 1;
        while ((r = element(j, &first)) == 1) {
            char fin[32] = "";
            int have_fin = 0, have_msg = 0, refusal = 0, calls = 0, f2 = 1;
            const char *k2, *ke2;
            while ((r = member(j, &f2, &k2, &ke2)) == 1) {
                if (is_key(k2, ke2, "finish_reason")) {
                    if (str_is(j, fin, sizeof fin))
                        return CG_GUARD_INVALID;
                    have_fin = fin[0] != '\0';
                } else if (is_key(k2, ke2, "message")) {
                    int f3 = 1;
                    const char *k3, *ke3;
                    have_msg = 1;
                    while ((r = member(j, &f3, &k3, &ke3)) == 1) {
                        if (is_key(k3, ke3, "refusal") || is_key(k3, ke3, "function_call")) {
                            int nul = peek_null(j);
                            if (skip(j, 3, NULL))
                                return CG_GUARD_INVALID;
                            if (!nul && *k3 == 'r')
                                refusal = 1;
                            else if (!nul)
                                calls = 1;
                        } else if (is_key(k3, ke3, "content")) {
                            if (peek_null(j) ? literal(j, "null") : string(j, NULL, NULL, text))
                                return CG_GUARD_INVALID;
                            if (text)
                                if (text)
                                    cg_buf_append(text, "\n", 1);
                        } else if (is_key(k3, ke3, "tool_calls")) {
                            /* the arguments are text too: keep the raw calls */
                            ws(j);
                            const char *v = j->p;
                            if (skip(j, 3, text))
                                return CG_GUARD_INVALID;
                            calls |= non_empty_array(v, j->p);
                        } else if (skip(j, 3, NULL)) {
                            return CG_GUARD_INVALID;
                        }
                    }
                    if (r < 0)
                        return CG_GUARD_INVALID;
                } else if (skip(j, 2, NULL)) {
                    return CG_GUARD_INVALID;
                }
            }
            if (r < 0 || !have_fin || !have_msg)
                return CG_GUARD_INVALID;
            seen_choices++;
            if (why != CG_GUARD_OK)
                continue; /* the first reason found stands; keep validating */
            if (refusal)
                why = CG_GUARD_REFUSAL;
            else if (!strcmp(fin, "tool_calls") || !strcmp(fin, "function_call") || calls)
                why = g->cfg->store_tool_calls ? CG_GUARD_OK : CG_GUARD_TOOL_CALL;
            else if (strcmp(fin, "stop") != 0)
                why = CG_GUARD_FINISH;
        }
        if (r < 0)
            return CG_GUARD_INVALID;
    }
    if (r < 0 || !seen_choices)
        return CG_GUARD_INVALID;
    if (why == CG_GUARD_OK && !have_usage)
        return CG_GUARD_NO_USAGE; /* a hit could not say what it saved */
    return why;
}

/* Anthropic message: stop_reason end_turn or stop_sequence (tool_use only
 * when configured; refusal, max_tokens, pause_turn, ... never). */
static cg_guard_reason check_anthropic(const cg_cache_guard *g, jr *j, cg_buf *text) {
    char stop[32] = "";
    int have_content = 0, have_usage = 0, tool_block = 0, top = 1, r;
    const char *k, *ke;
    while ((r = member(j, &top, &k, &ke)) == 1) {
        if (is_key(k, ke, "stop_reason")) {
            if (str_is(j, stop, sizeof stop))
                return CG_GUARD_INVALID;
        } else if (is_key(k, ke, "content")) {
            int first = 1;
            have_content = 1;
            while ((r = element(j, &first)) == 1) {
                int f2 = 1;
                const char *k2, *ke2;
                char type[32] = "";
                while ((r = member(j, &f2, &k2, &ke2)) == 1) {
                    if (is_key(k2, ke2, "type")) {
                        if (str_is(j, type, sizeof type))
                            return CG_GUARD_INVALID;
                    } else if (is_key(k2, ke2, "text")) {
                        if (string(j, NULL, NULL, text))
                            return CG_GUARD_INVALID;
                        if (text)
                            cg_buf_append(text, "\n", 1);
                    } else if (is_key(k2, ke2, "input")) {
                        if (skip(j, 3, text))
                            return CG_GUARD_INVALID;
                    } else if (skip(j, 3, NULL)) {
                        return CG_GUARD_INVALID;
                    }
                }
                if (r < 0 || !type[0])
                    return CG_GUARD_INVALID;
                if (!strcmp(type, "tool_use") || !strcmp(type, "server_tool_use"))
                    tool_block = 1;
            }
            if (r < 0)
                return CG_GUARD_INVALID;
        } else {
            if (is_key(k, ke, "usage")) {
                ws(j);
                have_usage = j->p < j->end && *j->p == '{';
            }
            if (skip(j, 1, NULL))
                return CG_GUARD_INVALID;
        }
    }
    if (r < 0 || !stop[0] || !have_content)
        return CG_GUARD_INVALID;
    if (!have_usage)
        return CG_GUARD_NO_USAGE;
    if (!strcmp(stop, "refusal"))
        return CG_GUARD_REFUSAL;
    if (!strcmp(stop, "tool_use") || tool_block)
        return g->cfg->store_tool_calls ? CG_GUARD_OK : CG_GUARD_TOOL_CALL;
    if (strcmp(stop, "end_turn") != 0 && strcmp(stop, "stop_sequence") != 0)
        return CG_GUARD_FINISH;
    return CG_GUARD_OK;
}

static cg_guard_reason ref_guard_check(const cg_cache_guard *g, int anthropic, const char *body,
                                       size_t len) {
    if ((int64_t)len > g->cfg->guard_max_bytes)
        return CG_GUARD_TOO_LARGE;
    if (!body || !len)
        return CG_GUARD_INVALID;
    jr j = {body, body + len, 0};
    cg_buf text; /* the answer's text, kept only when deny patterns will read it */
    cg_buf_init(&text, len * 2 + 64);
    cg_buf *tp = g->n_deny ? &text : NULL;
    cg_guard_reason r = anthropic ? check_anthropic(g, &j, tp) : check_openai(g, &j, tp);
    ws(&j);
    if (r != CG_GUARD_INVALID && (j.bad || j.p != j.end))
        r = CG_GUARD_INVALID; /* trailing bytes, or bad JSON after the answer */
    for (size_t i = 0; r == CG_GUARD_OK && i < g->n_deny; i++)
        if (regexec(&g->deny[i], text.data ? text.data : "", 0, NULL, 0) == 0)
            r = CG_GUARD_DENY;
    cg_buf_free(&text);
    return r;
}

/* --- comparison ---------------------------------------------------------------- */

static cg_cache_cfg g_cfg[3];
static cg_cache_guard g_guard[3];
static size_t g_compared, g_ok, g_invalid, g_by[CG_GUARD_N];

static void setup_guards(void) {
    static char *deny[] = {"as an ai", "sorry", "\\\\u00e9|\xc3\xa9t\xc3\xa9", "^mock", "[{]\"x"};
    char err[256];
    for (int i = 0; i < 3; i++) {
        g_cfg[i] = (cg_cache_cfg){.guard_max_bytes = 1 << 20};
        if (i >= 1) {
            g_cfg[i].deny = deny;
            g_cfg[i].n_deny = sizeof deny / sizeof deny[0];
        }
        g_cfg[i].store_tool_calls = i == 2;
        assert_int_equal(cg_cache_guard_init(&g_guard[i], &g_cfg[i], err, sizeof err), 0);
    }
}

static void free_guards(void) {
    for (int i = 0; i < 3; i++)
        cg_cache_guard_free(&g_guard[i]);
}

static void compare1(const char *body, size_t len) {
    for (int anth = 0; anth < 2; anth++)
        for (int i = 0; i < 3; i++) {
            cg_guard_reason want = ref_guard_check(&g_guard[i], anth, body, len);
            cg_guard_reason got = cg_cache_guard_check(&g_guard[i], anth, body, len);
            if (want != got)
                fprintf(stderr, "guard differs (anthropic %d, guard %d): want %s got %s: %.*s\n",
                        anth, i, cg_guard_reason_name(want), cg_guard_reason_name(got),
                        (int)(len > 400 ? 400 : len), body);
            assert_int_equal(want, got);
            g_ok += want == CG_GUARD_OK;
            g_invalid += want == CG_GUARD_INVALID;
            g_by[want]++;
        }
    g_compared++;
}

static uint64_t g_rng = 0x243f6a8885a308d3ull;

static uint64_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

/* The body as is, then mutated copies. */
static void compare(const char *body, size_t len, int mutations) {
    static const char bytes[] = {
        '"',  '\\',       '{',        '}',        '[',        ']', ',', ':', ' ', '\n', 0,   0x1f,
        0x7f, (char)0x80, (char)0xc3, (char)0xe2, (char)0xff, 'u', '0', 'n', 't', 'e',  '-', '.'};
    static const char *const inserts[] = {
        "\\u0000", "\\ud800", "\\udc00",      "\\ud83d\\ude00", "\\u00e9",          "\\n",
        "\\\"",    "\xc3",    "\xe0\x80\x80", "\xed\xa0\x80",   "\xf4\x90\x80\x80", "\xc3\xa9",
        " \t\r\n", "\\x",     "\x01"};
    compare1(body, len);
    if (!len)
        return;
    char *m = malloc(len + 16);
    for (int k = 0; k < mutations; k++) {
        size_t at = rnd() % len, n = len;
        memcpy(m, body, len);
        switch (rnd() % 3) {
        case 0: /* truncated */
            n = at;
            break;
        case 1: /* one byte replaced */
            m[at] = bytes[rnd() % sizeof bytes];
            break;
        default: { /* a sequence inserted */
            const char *ins = inserts[rnd() % (sizeof inserts / sizeof inserts[0])];
            size_t il = strlen(ins);
            memcpy(m + at + il, body + at, len - at);
            memcpy(m + at, ins, il);
            n = len + il;
        }
        }
        compare1(m, n);
    }
    free(m);
}

/* --- inputs: files ------------------------------------------------------------ */

static void text_of_file(const char *p, size_t n, int whole) {
    compare(p, n, whole ? 40 : 4);
}

static void compare_file(const char *path) {
    json_texts_of(path, text_of_file);
}

static void test_every_json_under_tests(void **state) {
    (void)state;
    const char *src = getenv("CG_SOURCE_DIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests", src ? src : ".");
    size_t before = g_compared;
    walk_files(dir, 0, 4 << 20, compare_file);
    fprintf(stderr, "guard: %zu bodies under tests/ (and mutations) compared\n",
            g_compared - before);
    assert_true(g_compared - before >= 50);
}

/* --- inputs: responses built from arena-hard answers ---------------------------- */

static const char *const FINISH[] = {
    "stop", "length", "content_filter", "tool_calls", "function_call", "", NULL};
static const char *const STOP[] = {"end_turn", "stop_sequence", "max_tokens", "tool_use",
                                   "refusal",  "pause_turn",    "",           NULL};

static void compare_json(json_t *v, int mutations) {
    char *s = json_dumps(v, JSON_COMPACT | (rnd() % 3 == 0 ? JSON_ENSURE_ASCII : 0) |
                                (rnd() % 4 == 0 ? JSON_INDENT(2) : 0));
    compare(s, strlen(s), mutations);
    free(s);
}

static void responses_for(const char *answer, size_t i) {
    json_t *usage = json_pack("{s:i,s:i,s:i,s:{s:i}}", "prompt_tokens", 12, "completion_tokens", 40,
                              "total_tokens", 52, "prompt_tokens_details", "cached_tokens", 0);
    /* OpenAI */
    json_t *msg = json_pack("{s:s,s:s}", "role", "assistant", "content", answer);
    switch (i % 6) {
    case 1:
        json_object_set_new(msg, "refusal", json_null());
        json_object_set_new(msg, "annotations", json_array());
        break;
    case 2:
        json_object_set_new(msg, "refusal", json_string("I can't help with that."));
        break;
    case 3:
        json_object_set_new(msg, "tool_calls",
                            json_pack("[{s:s,s:s,s:{s:s,s:s}}]", "id", "call_1", "type", "function",
                                      "function", "name", "lookup", "arguments",
                                      "{\"q\":\"as an AI\",\"n\":3}"));
        break;
    case 4:
        json_object_set_new(msg, "tool_calls", json_array());
        json_object_set_new(msg, "function_call", json_null());
        break;
    case 5:
        json_object_set_new(msg, "function_call",
                            json_pack("{s:s,s:s}", "name", "f", "arguments", "{}"));
        break;
    }
    json_t *choice = json_pack("{s:i,s:O,s:n,s:s}", "index", 0, "message", msg, "logprobs",
                               "finish_reason", FINISH[i % 6]);
    json_t *choices = json_pack("[O]", choice);
    if (i % 7 == 3) { /* a second choice */
        json_t *c2 = json_deep_copy(choice);
        json_object_set_new(c2, "finish_reason", json_string(FINISH[(i / 7) % 6]));
        json_array_append_new(choices, c2);
    }
    json_t *oai = json_pack("{s:s,s:s,s:i,s:s,s:O,s:s}", "id", "chatcmpl-abc", "object",
                            "chat.completion", "created", 1700000000, "model", "gpt-4o-mini",
                            "choices", choices, "system_fingerprint", "fp_1");
    if (i % 11 != 5)
        json_object_set(oai, "usage", usage);
    compare_json(oai, 6);
    /* Anthropic */
    json_t *content = json_array();
    if (i % 5 == 1)
        json_array_append_new(content, json_pack("{s:s,s:s,s:s}", "type", "thinking", "thinking",
                                                 "Let me think.", "signature", "sig=="));
    json_array_append_new(content, json_pack("{s:s,s:s}", "type", "text", "text", answer));
    if (i % 5 == 2)
        json_array_append_new(content, json_pack("{s:s,s:s,s:s,s:{s:s,s:[i,f,b,n]}}", "type",
                                                 "tool_use", "id", "tu_1", "name", "get", "input",
                                                 "city", "Paris", "xs", 1, 2.5, 1));
    if (i % 5 == 3)
        json_array_append_new(content, json_pack("{s:s,s:s,s:s,s:{}}", "type", "server_tool_use",
                                                 "id", "s1", "name", "web_search", "input"));
    json_t *ant = json_pack("{s:s,s:s,s:s,s:s,s:O,s:s,s:n}", "id", "msg_1", "type", "message",
                            "role", "assistant", "model", "claude-haiku-4-5", "content", content,
                            "stop_reason", STOP[i % 7], "stop_sequence");
    if (i % 13 != 6)
        json_object_set_new(ant, "usage",
                            json_pack("{s:i,s:i,s:i}", "input_tokens", 10, "output_tokens", 20,
                                      "cache_read_input_tokens", 0));
    compare_json(ant, 6);
    json_decref(ant);
    json_decref(content);
    json_decref(oai);
    json_decref(choices);
    json_decref(choice);
    json_decref(msg);
    json_decref(usage);
}

static void test_arena_hard_answers(void **state) {
    (void)state;
    static const char *const files[] = {"v0.1_answer_gpt-4-0314.jsonl",
                                        "v0.1_answer_gpt-4-0613.jsonl",
                                        "v0.1_answer_gpt-3.5-turbo-0125.jsonl", NULL};
    const char *sh = getenv("CG_SHARED_DIR");
    size_t before = g_compared, i = 0;
    for (int f = 0; files[f]; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/data/arena-hard/%s", sh ? sh : "../shared", files[f]);
        FILE *fp = fopen(path, "r");
        if (!fp) {
            fprintf(stderr, "guard: %s not found, skipped\n", path);
            continue;
        }
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, fp)) > 0) {
            json_t *a = json_loadb(line, (size_t)n, 0, NULL);
            json_t *msgs = json_object_get(a, "messages"), *x;
            size_t k;
            json_array_foreach(msgs, k, x) {
                json_t *c = json_object_get(x, "content");
                const char *t =
                    json_string_value(json_is_object(c) ? json_object_get(c, "answer") : c);
                if (t)
                    responses_for(t, i++);
            }
            json_decref(a);
        }
        free(line);
        fclose(fp);
    }
    fprintf(stderr, "guard: %zu arena-hard responses (and mutations) compared\n",
            g_compared - before);
    assert_true(g_compared - before >= 1000);
}

/* A few shapes by hand: escapes at 8-byte boundaries, long runs, odd spacing. */
static void test_hand_made(void **state) {
    (void)state;
    static const char *const bodies[] = {
        "{\"choices\":[{\"message\":{\"content\":\"abcdefg\\\"hijklmnop\\\\qrstuvw\\u00e9xyz\"},"
        "\"finish_reason\":\"stop\"}],\"usage\":{}}",
        "{\"choices\":[{\"message\":{\"content\":\"1234567\"},\"finish_reason\":\"stop\"}],"
        "\"usage\":{}}",
        "{\"choices\":[{\"message\":{\"content\":\"12345678\"},\"finish_reason\":\"stop\"}],"
        "\"usage\":{}}",
        "  {\n \"choices\" : [ { \"message\" : { \"content\" : \"a\\tb\" } , \"finish_reason\" "
        ": \"stop\" } ] , \"usage\" : { } }\n ",
        "{\"content\":[{\"type\":\"text\",\"text\":\"As an AI \\u00e9t\\u00e9\"}],"
        "\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":1}}",
        "{\"content\":[{\"type\":\"text\",\"text\":\"~~~~~~~~~~~~~~~~\x7f\x7f\x7f\"}],"
        "\"stop_reason\":\"end_turn\",\"usage\":{}}",
        "{\"choices\":[{\"message\":{\"content\":null},\"finish_reason\":null}],\"usage\":{}}",
        "{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"a\":[1,-2,3.5e+10,-0.0,1E-3,true,false,null,\"\"]}}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        compare(bodies[i], strlen(bodies[i]), 2000);
    /* nesting around the reader's depth limit, in each place a value is
     * skipped (usage, a choice, a message, tool calls whose text is kept) */
    static const char *const shapes[] = {
        "{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":\"stop\"}],"
        "\"usage\":%s}",
        "{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":\"stop\",\"x\":%s}],"
        "\"usage\":{}}",
        "{\"choices\":[{\"message\":{\"content\":\"x\",\"x\":%s},\"finish_reason\":\"stop\"}],"
        "\"usage\":{}}",
        "{\"choices\":[{\"message\":{\"tool_calls\":%s},\"finish_reason\":\"stop\"}],"
        "\"usage\":{}}",
        "{\"content\":[{\"type\":\"tool_use\",\"input\":%s}],\"stop_reason\":\"end_turn\","
        "\"usage\":{}}",
    };
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
        for (int d = 248; d <= 262; d++)
            for (int kind = 0; kind < 3; kind++) {
                cg_buf v, b;
                cg_buf_init(&v, 1 << 20);
                cg_buf_init(&b, 1 << 20);
                for (int i = 0; i < d; i++)
                    cg_buf_puts(&v, kind == 0   ? "["
                                    : kind == 1 ? "{\"k\":"
                                                : (i & 1 ? "[" : "{\"k\":"));
                cg_buf_puts(&v, "1");
                for (int i = d - 1; i >= 0; i--)
                    cg_buf_puts(&v, kind == 0 ? "]" : kind == 1 ? "}" : (i & 1 ? "]" : "}"));
                cg_buf_printf(&b, shapes[sh], v.data);
                compare(b.data, b.len, 3);
                cg_buf_free(&v);
                cg_buf_free(&b);
            }
    fprintf(stderr, "guard: %zu compared in all; %zu ok, %zu invalid decisions\n", g_compared, g_ok,
            g_invalid);
    for (int r = CG_GUARD_OK; r < CG_GUARD_N; r++) {
        fprintf(stderr, "  %s: %zu\n", cg_guard_reason_name(r), g_by[r]);
        if (r != CG_GUARD_STATUS && r != CG_GUARD_TOO_LARGE)
            assert_true(g_by[r] > 0); /* every decision the reader makes was seen */
    }
    assert_true(g_ok > 0 && g_invalid > 0);
}

static int setup(void **state) {
    (void)state;
    setup_guards();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    free_guards();
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_json_under_tests),
        cmocka_unit_test(test_arena_hard_answers),
        cmocka_unit_test(test_hand_made),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
