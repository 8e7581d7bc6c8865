/* policy: TTLs, cache-control, the temperature ceiling and the write guard
 * (see policy.h). */
#include "cache/policy.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/find.h"
#include "core/hash.h"

const cg_cache_tenant_cfg *cg_cache_tenant(const cg_cache_cfg *c, const char *tenant) {
    for (size_t i = 0; tenant && i < c->n_tenants; i++)
        if (strcmp(c->tenants[i].tenant, tenant) == 0)
            return &c->tenants[i];
    return NULL;
}

static const cg_cache_intent_ttl *find_intent(const cg_cache_intent_ttl *by, size_t n,
                                              const char *intent) {
    for (size_t i = 0; intent && *intent && i < n; i++)
        if (strcmp(by[i].intent, intent) == 0)
            return &by[i];
    return NULL;
}

int64_t cg_cache_ttl(const cg_cache_cfg *c, const char *tenant, const char *intent) {
    const cg_cache_tenant_cfg *t = cg_cache_tenant(c, tenant);
    const cg_cache_intent_ttl *it;
    if (t && !t->enabled)
        return 0;
    if (t && (it = find_intent(t->by_intent, t->n_by_intent, intent)))
        return it->ttl_s;
    if ((it = find_intent(c->by_intent, c->n_by_intent, intent)))
        return it->ttl_s;
    if (t && t->ttl_default >= 0)
        return t->ttl_default;
    return c->ttl_default;
}

unsigned cg_cache_control(const char *h) {
    unsigned f = 0;
    if (!h)
        return 0;
    while (*h) {
        while (*h == ' ' || *h == '\t' || *h == ',')
            h++;
        const char *s = h;
        while (*h && *h != ',' && *h != '=' && *h != ' ' && *h != '\t')
            h++;
        size_t n = (size_t)(h - s);
        if (n == 8 && strncasecmp(s, "no-store", 8) == 0)
            f |= CG_CC_NO_STORE;
        else if (n == 8 && strncasecmp(s, "no-cache", 8) == 0)
            f |= CG_CC_NO_CACHE;
        while (*h && *h != ',') /* a directive's value, e.g. max-age=0 */
            h++;
    }
    return f;
}

int cg_cache_temperature_ok(const cg_cache_cfg *c, const json_t *body) {
    json_t *t = json_object_get(body, "temperature");
    if (!t || json_is_null(t))
        return 1.0 <= c->max_temperature;
    if (!json_is_number(t))
        return 0;
    return json_number_value(t) <= c->max_temperature;
}

/* --- guard ------------------------------------------------------------------ */

int cg_cache_guard_init(cg_cache_guard *g, const cg_cache_cfg *c, char *err, size_t errlen) {
    memset(g, 0, sizeof *g);
    g->cfg = c;
    if (!c->n_deny)
        return 0;
    g->deny = calloc(c->n_deny, sizeof *g->deny);
    if (!g->deny) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < c->n_deny; i++) {
        int rc = regcomp(&g->deny[i], c->deny[i], REG_EXTENDED | REG_ICASE | REG_NOSUB);
        if (rc != 0) {
            char msg[160];
            regerror(rc, &g->deny[i], msg, sizeof msg);
            snprintf(err, errlen, "cache.guard.deny[%zu]: %s", i, msg);
            cg_cache_guard_free(g);
            return -1;
        }
        g->n_deny++;
    }
    return 0;
}

void cg_cache_guard_free(cg_cache_guard *g) {
    for (size_t i = 0; i < g->n_deny; i++)
        regfree(&g->deny[i]);
    free(g->deny);
    g->deny = NULL;
    g->n_deny = 0;
}

const char *cg_guard_reason_name(cg_guard_reason r) {
    static const char *const names[CG_GUARD_N] = {"ok",           "status",    "no_usage",
                                                  "finish",       "refusal",   "tool_call",
                                                  "deny_pattern", "too_large", "invalid"};
    return r >= 0 && r < CG_GUARD_N ? names[r] : "?";
}

/* --- a small JSON reader for the guard --------------------------------------
 * The guard reads a complete response body without building a tree (jansson
 * costs ~200 instructions per byte here, more than the rest of a miss): one
 * validating pass that keeps only what the rules look at. */

typedef struct jr {
    const char *p, *end;
    int bad;
} jr;

#define DEPTH_MAX 256

static void ws_run(jr *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
        j->p++;
}

/* Providers send compact JSON: the next byte is rarely white space. */
static inline void ws(jr *j) {
    if (j->p < j->end && (unsigned char)*j->p > ' ')
        return;
    ws_run(j);
}

static inline int eat(jr *j, char c) {
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

/* Past the plain bytes at p (core/find.h). */
static inline const char *plain_run(const char *p, const char *end) {
    return p + cg_json_plain_len(p, (size_t)(end - p));
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
        p = plain_run(p, j->end); /* a run of plain ASCII */
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

static inline int key_eq(const char *s, const char *e, const char *k, size_t n) {
    return (size_t)(e - s) == n && memcmp(s, k, n) == 0;
}
#define is_key(s, e, lit) key_eq((s), (e), (lit), sizeof(lit) - 1)

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

/* Skips (and validates) a value the guard does not read, without
 * recursion: the grammar and the depth limit of skip() (a value nested
 * deeper than DEPTH_MAX is refused), open containers on a small stack. */
static int skip_fast(jr *j, int depth) {
    char open[DEPTH_MAX + 2];
    int top = 0;
    for (;;) {
        ws(j); /* a value, at depth + top */
        if (j->p >= j->end || depth + top > DEPTH_MAX)
            return j->bad = -1;
        switch (*j->p) {
        case '{':
            j->p++;
            if (eat(j, '}'))
                break;
            open[top++] = '}';
            if (string(j, NULL, NULL, NULL) || !eat(j, ':'))
                return j->bad = -1;
            continue;
        case '[':
            j->p++;
            if (eat(j, ']'))
                break;
            open[top++] = ']';
            continue;
        case '"':
            string(j, NULL, NULL, NULL);
            break;
        case 't':
            literal(j, "true");
            break;
        case 'f':
            literal(j, "false");
            break;
        case 'n':
            literal(j, "null");
            break;
        default:
            number(j);
        }
        if (j->bad)
            return -1;
        /* after a value: the next member or element, or close containers */
        for (;;) {
            if (!top)
                return 0;
            if (eat(j, ',')) {
                if (open[top - 1] == '}' && (string(j, NULL, NULL, NULL) || !eat(j, ':')))
                    return j->bad = -1;
                break;
            }
            if (!eat(j, open[top - 1]))
                return j->bad = -1;
            top--;
        }
    }
}

/* Skips (and validates) any value; its text goes to out when set. */
static int skip(jr *j, int depth, cg_buf *out) {
    if (!out)
        return skip_fast(j, depth);
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

cg_guard_reason cg_cache_guard_check(const cg_cache_guard *g, int anthropic, const char *body,
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
