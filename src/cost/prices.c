/* prices: the model price table (see prices.h).
 *
 * Owns: the built-in OpenAI and Anthropic rows, the table storage (fixed-size
 * blocks, so a cg_price pointer stays valid for the table's life), the
 * open-addressing name index, lookup with snapshot / "-latest" /
 * "provider/" fallbacks (no allocation), and the LiteLLM importer with its
 * exact decimal-text price conversion.
 */
#include "cost/prices.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/money.h"
#include "cost/cost_internal.h"

#define BLOCK_ROWS 256u
#define MAX_ROWS (1u << 20)                 /* hard ceiling on table size */
#define LITELLM_FILE_MAX ((size_t)64 << 20) /* largest price file read */
#define NUM_MARK '\x01'                     /* prefix of numbers rewritten as strings */

struct cg_price_table {
    cg_price **blocks; /* BLOCK_ROWS rows each; never moved once allocated */
    size_t nblocks;
    size_t n;
    uint32_t *slots; /* open addressing, value = row index + 1, 0 = empty */
    size_t nslots;   /* power of two, at least 2 * n */
};

/* ------------------------------------------------------------------ */
/* Storage and index                                                    */

static uint64_t name_hash(const char *s, size_t n) {
    uint64_t h = UINT64_C(1469598103934665603); /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

static cg_price *row(const cg_price_table *t, size_t i) {
    return &t->blocks[i / BLOCK_ROWS][i % BLOCK_ROWS];
}

static const cg_price *find_n(const cg_price_table *t, const char *s, size_t n) {
    if (!t->nslots || n == 0 || n >= sizeof(((cg_price *)0)->model))
        return NULL;
    size_t mask = t->nslots - 1;
    for (size_t i = name_hash(s, n) & mask;; i = (i + 1) & mask) {
        uint32_t v = t->slots[i];
        if (v == 0)
            return NULL;
        const cg_price *p = row(t, v - 1);
        if (p->model[n] == '\0' && memcmp(p->model, s, n) == 0)
            return p;
    }
}

static void slot_put(uint32_t *slots, size_t nslots, const char *name, uint32_t v) {
    size_t mask = nslots - 1;
    size_t i = name_hash(name, strlen(name)) & mask;
    while (slots[i] != 0)
        i = (i + 1) & mask;
    slots[i] = v;
}

static int index_grow(cg_price_table *t, size_t want_rows) {
    if (t->nslots >= 2 * want_rows)
        return 0;
    size_t ns = t->nslots ? t->nslots : 64;
    while (ns < 2 * want_rows)
        ns *= 2;
    uint32_t *slots = calloc(ns, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < t->n; i++)
        slot_put(slots, ns, row(t, i)->model, (uint32_t)(i + 1));
    free(t->slots);
    t->slots = slots;
    t->nslots = ns;
    return 0;
}

cg_price_table *cg_prices_new(void) {
    return calloc(1, sizeof(cg_price_table));
}

void cg_prices_free(cg_price_table *t) {
    if (!t)
        return;
    for (size_t i = 0; i < t->nblocks; i++)
        free(t->blocks[i]);
    free(t->blocks);
    free(t->slots);
    free(t);
}

int cg_prices_set(cg_price_table *t, const cg_price *p) {
    if (!t || !p)
        return -1;
    size_t n = strnlen(p->model, sizeof p->model);
    if (n == 0 || n == sizeof p->model ||
        strnlen(p->provider, sizeof p->provider) == sizeof p->provider)
        return -1;
    cg_price *old = (cg_price *)find_n(t, p->model, n);
    if (old) {
        *old = *p; /* in place: pointers handed out stay valid */
        return 0;
    }
    if (t->n >= MAX_ROWS)
        return -1;
    if (index_grow(t, t->n + 1) != 0)
        return -1;
    if (t->n == t->nblocks * BLOCK_ROWS) {
        cg_price **nb = realloc(t->blocks, (t->nblocks + 1) * sizeof *nb);
        if (!nb)
            return -1;
        t->blocks = nb;
        nb[t->nblocks] = malloc(BLOCK_ROWS * sizeof(cg_price));
        if (!nb[t->nblocks])
            return -1;
        t->nblocks++;
    }
    cg_price *dst = row(t, t->n);
    *dst = *p;
    slot_put(t->slots, t->nslots, dst->model, (uint32_t)(t->n + 1));
    t->n++;
    return 0;
}

size_t cg_prices_count(const cg_price_table *t) {
    return t ? t->n : 0;
}

const cg_price *cg_prices_at(const cg_price_table *t, size_t i) {
    return t && i < t->n ? row(t, i) : NULL;
}

/* ------------------------------------------------------------------ */
/* Lookup                                                               */

static int digits(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int month_day_ok(const char *mm, const char *dd) {
    int m = (mm[0] - '0') * 10 + (mm[1] - '0');
    int d = (dd[0] - '0') * 10 + (dd[1] - '0');
    return m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

/* Length of a trailing "-YYYY-MM-DD" or "-YYYYMMDD" snapshot suffix, or 0. */
static size_t date_suffix_len(const char *s, size_t n) {
    if (n > 11) {
        const char *p = s + n - 11;
        if (p[0] == '-' && digits(p + 1, 4) && p[5] == '-' && digits(p + 6, 2) && p[8] == '-' &&
            digits(p + 9, 2) && month_day_ok(p + 6, p + 9))
            return 11;
    }
    if (n > 9) {
        const char *p = s + n - 9;
        if (p[0] == '-' && digits(p + 1, 8) && month_day_ok(p + 5, p + 7))
            return 9;
    }
    return 0;
}

static const cg_price *find_variants(const cg_price_table *t, const char *s, size_t n) {
    const cg_price *p = find_n(t, s, n);
    if (p)
        return p;
    size_t d = date_suffix_len(s, n);
    if (d && (p = find_n(t, s, n - d)) != NULL)
        return p;
    static const char latest[] = "-latest";
    size_t ll = sizeof latest - 1;
    if (n > ll && memcmp(s + n - ll, latest, ll) == 0)
        return find_n(t, s, n - ll);
    return NULL;
}

const cg_price *cg_prices_find(const cg_price_table *t, const char *model) {
    if (!t || !model)
        return NULL;
    const char *s = model;
    for (;;) {
        const cg_price *p = find_variants(t, s, strlen(s));
        if (p)
            return p;
        const char *slash = strchr(s, '/');
        if (!slash)
            return NULL;
        s = slash + 1; /* "provider/model": retry without the prefix */
    }
}

void cg_price_effective(const cg_price *in, cg_price *out) {
    *out = *in;
    if (out->cached_input < 0)
        out->cached_input = in->input;
    if (out->cache_write_5m < 0)
        out->cache_write_5m = in->input;
    if (out->cache_write_1h < 0)
        out->cache_write_1h = in->input;
    if (out->batch_input < 0 && in->input >= 0)
        out->batch_input = in->input / 2;
    if (out->batch_output < 0 && in->output >= 0)
        out->batch_output = in->output / 2;
}

/* ------------------------------------------------------------------ */
/* Built-in table                                                       */

/* Prices are USD per 1M tokens as decimal text, parsed exactly by
 * cg_money_parse_usd; NULL = CG_PRICE_UNSET. Source: LiteLLM's
 * model_prices_and_context_window.json (mirror of 2026-07-24) cross-checked
 * with the providers' published price pages; see docs/cost.md. */
typedef struct builtin_row {
    const char *model, *provider;
    cg_model_kind kind;
    const char *in, *cached, *w5m, *w1h, *out, *b_in, *b_out;
    int64_t max_out, ctx;
    const char *web_1k; /* USD per 1000 web searches */
} builtin_row;

#define OAI(m, in, cached, out, bin, bout, mo, ctx)                                                \
    { m, "openai", CG_MODEL_CHAT, in, cached, in, in, out, bin, bout, mo, ctx, NULL }
#define OEMB(m, in, bin, ctx)                                                                      \
    { m, "openai", CG_MODEL_EMBEDDING, in, NULL, NULL, NULL, "0", bin, "0", 0, ctx, NULL }
#define ANT(m, in, rd, w5, w1, out, bin, bout, mo, web)                                            \
    { m, "anthropic", CG_MODEL_CHAT, in, rd, w5, w1, out, bin, bout, mo, 200000, web }

static const builtin_row builtin_rows[] = {
    /* OpenAI: cached = read price; OpenAI never bills or reports cache writes,
     * so cache_write_* is the input price and stays unused. Batch = 50%. */
    OAI("gpt-4o", "2.50", "1.25", "10.00", "1.25", "5.00", 16384, 128000),
    OAI("gpt-4o-2024-05-13", "5.00", NULL, "15.00", "2.50", "7.50", 4096, 128000),
    OAI("gpt-4o-mini", "0.15", "0.075", "0.60", "0.075", "0.30", 16384, 128000),
    OAI("gpt-4.1", "2.00", "0.50", "8.00", "1.00", "4.00", 32768, 1047576),
    OAI("gpt-4.1-mini", "0.40", "0.10", "1.60", "0.20", "0.80", 32768, 1047576),
    OAI("gpt-4.1-nano", "0.10", "0.025", "0.40", "0.05", "0.20", 32768, 1047576),
    OAI("gpt-5", "1.25", "0.125", "10.00", "0.625", "5.00", 128000, 272000),
    OAI("gpt-5.1", "1.25", "0.125", "10.00", "0.625", "5.00", 128000, 272000),
    OAI("gpt-5-mini", "0.25", "0.025", "2.00", "0.125", "1.00", 128000, 272000),
    OAI("gpt-5-nano", "0.05", "0.005", "0.40", "0.025", "0.20", 128000, 272000),
    OAI("o1", "15.00", "7.50", "60.00", "7.50", "30.00", 100000, 200000),
    OAI("o3", "2.00", "0.50", "8.00", "1.00", "4.00", 100000, 200000),
    OAI("o3-mini", "1.10", "0.55", "4.40", "0.55", "2.20", 100000, 200000),
    OAI("o4-mini", "1.10", "0.275", "4.40", "0.55", "2.20", 100000, 200000),
    OAI("gpt-4-turbo", "10.00", NULL, "30.00", "5.00", "15.00", 4096, 128000),
    OAI("gpt-3.5-turbo", "0.50", NULL, "1.50", "0.25", "0.75", 4096, 16385),
    OAI("gpt-3.5-turbo-0125", "0.50", NULL, "1.50", "0.25", "0.75", 4096, 16385),
    OEMB("text-embedding-3-small", "0.02", "0.01", 8191),
    OEMB("text-embedding-3-large", "0.13", "0.065", 8191),
    OEMB("text-embedding-ada-002", "0.10", "0.05", 8191),
    /* Anthropic: read 0.1x, write 5 min 1.25x, write 1 h 2x input; batch 50%;
     * server web search $10 per 1000 where the model offers it. */
    ANT("claude-opus-4-5", "5.00", "0.50", "6.25", "10.00", "25.00", "2.50", "12.50", 64000,
        "10.00"),
    ANT("claude-opus-4-1", "15.00", "1.50", "18.75", "30.00", "75.00", "7.50", "37.50", 32000,
        "10.00"),
    ANT("claude-opus-4", "15.00", "1.50", "18.75", "30.00", "75.00", "7.50", "37.50", 32000,
        "10.00"),
    ANT("claude-opus-4-0", "15.00", "1.50", "18.75", "30.00", "75.00", "7.50", "37.50", 32000,
        "10.00"),
    ANT("claude-sonnet-4-5", "3.00", "0.30", "3.75", "6.00", "15.00", "1.50", "7.50", 64000,
        "10.00"),
    ANT("claude-sonnet-4", "3.00", "0.30", "3.75", "6.00", "15.00", "1.50", "7.50", 64000, "10.00"),
    ANT("claude-sonnet-4-0", "3.00", "0.30", "3.75", "6.00", "15.00", "1.50", "7.50", 64000,
        "10.00"),
    ANT("claude-3-7-sonnet", "3.00", "0.30", "3.75", "6.00", "15.00", "1.50", "7.50", 64000,
        "10.00"),
    ANT("claude-3-5-sonnet", "3.00", "0.30", "3.75", "6.00", "15.00", "1.50", "7.50", 8192,
        "10.00"),
    ANT("claude-haiku-4-5", "1.00", "0.10", "1.25", "2.00", "5.00", "0.50", "2.50", 64000, "10.00"),
    ANT("claude-3-5-haiku", "0.80", "0.08", "1.00", "1.60", "4.00", "0.40", "2.00", 8192, "10.00"),
    ANT("claude-3-haiku", "0.25", "0.03", "0.30", "0.50", "1.25", "0.125", "0.625", 4096, NULL),
    ANT("claude-3-opus", "15.00", "1.50", "18.75", "30.00", "75.00", "7.50", "37.50", 4096, NULL),
};

static int usd_or_unset(const char *s, int64_t *out) {
    if (!s) {
        *out = CG_PRICE_UNSET;
        return 0;
    }
    return cg_money_parse_usd(s, out);
}

static int builtin_to_price(const builtin_row *r, cg_price *p) {
    memset(p, 0, sizeof *p);
    snprintf(p->model, sizeof p->model, "%s", r->model);
    snprintf(p->provider, sizeof p->provider, "%s", r->provider);
    p->kind = r->kind;
    p->max_output_tokens = r->max_out;
    p->context_window = r->ctx;
    if (usd_or_unset(r->in, &p->input) || usd_or_unset(r->cached, &p->cached_input) ||
        usd_or_unset(r->w5m, &p->cache_write_5m) || usd_or_unset(r->w1h, &p->cache_write_1h) ||
        usd_or_unset(r->out, &p->output) || usd_or_unset(r->b_in, &p->batch_input) ||
        usd_or_unset(r->b_out, &p->batch_output) || usd_or_unset(r->web_1k, &p->web_search_per_1k))
        return -1;
    return 0;
}

cg_price_table *cg_prices_builtin(void) {
    cg_price_table *t = cg_prices_new();
    if (!t)
        return NULL;
    for (size_t i = 0; i < sizeof builtin_rows / sizeof builtin_rows[0]; i++) {
        cg_price p;
        if (builtin_to_price(&builtin_rows[i], &p) != 0) {
            CG_ERROR("prices: bad built-in row %s", builtin_rows[i].model);
            cg_prices_free(t);
            return NULL;
        }
        if (cg_prices_set(t, &p) != 0) {
            cg_prices_free(t);
            return NULL;
        }
    }
    return t;
}

/* ------------------------------------------------------------------ */
/* Exact decimal scaling                                                */

#define DEC_MAX_DIGITS 64

const char *cg_cost_dec_strerror(int rc) {
    switch (rc) {
    case CG_DEC_OK:
        return "ok";
    case CG_DEC_NEGATIVE:
        return "negative value";
    case CG_DEC_OVERFLOW:
        return "value too large";
    default:
        return "not a number";
    }
}

int cg_cost_dec_scale(const char *s, size_t n, int scale_exp, int64_t *out, int *inexact) {
    /* value = M * 10^e, M = the significant digits kept in dig[] (leading
     * zeros dropped); sticky = a non-zero digit beyond DEC_MAX_DIGITS. */
    char dig[DEC_MAX_DIGITS];
    size_t nd = 0, i = 0;
    long e = 0;
    int neg = 0, sticky = 0, seen = 0;
    *out = 0;
    *inexact = 0;
    if (i < n && s[i] == '-') {
        neg = 1;
        i++;
    }
    for (int frac = 0; i < n; i++) {
        char c = s[i];
        if (c == '.' && !frac) {
            frac = 1;
            continue;
        }
        if (c < '0' || c > '9')
            break;
        seen = 1;
        if (nd == 0 && c == '0') {
            e -= frac; /* leading zero */
            continue;
        }
        if (nd < DEC_MAX_DIGITS) {
            dig[nd++] = c;
            e -= frac;
        } else {
            e += !frac; /* dropped integer digit keeps its weight */
            if (c != '0')
                sticky = 1;
        }
    }
    if (!seen)
        return CG_DEC_SYNTAX;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        long x = 0;
        int xneg = 0, xseen = 0;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            xneg = s[i++] == '-';
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            xseen = 1;
            if (x < 100000)
                x = x * 10 + (s[i] - '0');
        }
        if (!xseen)
            return CG_DEC_SYNTAX;
        e += xneg ? -x : x;
    }
    if (i != n)
        return CG_DEC_SYNTAX;
    if (nd == 0 && !sticky)
        return CG_DEC_OK; /* zero, including "-0" */
    if (neg)
        return CG_DEC_NEGATIVE;

    long q = e + scale_exp;   /* result = M * 10^q */
    long nint = (long)nd + q; /* digits of M above the unit */
    int64_t v = 0;
    for (long k = 0; k < nint; k++) {
        int d = k < (long)nd ? dig[k] - '0' : 0;
        if (v > (INT64_MAX - d) / 10)
            return CG_DEC_OVERFLOW;
        v = v * 10 + d;
    }
    if (nint < (long)nd) {
        /* Digits below the unit: round half away from zero on the first,
         * the rest (and sticky) only decide whether it was exact. */
        long first = nint < 0 ? -1 : nint;
        int rest = sticky;
        for (long k = (first < 0 ? 0 : first + 1); k < (long)nd; k++)
            if (dig[k] != '0')
                rest = 1;
        int fd = first >= 0 ? dig[first] - '0' : 0;
        *inexact = fd != 0 || rest || first < 0;
        if (fd >= 5) {
            if (v == INT64_MAX)
                return CG_DEC_OVERFLOW;
            v++;
        }
    } else if (sticky) {
        *inexact = 1;
    }
    *out = v;
    return CG_DEC_OK;
}

/* ------------------------------------------------------------------ */
/* LiteLLM importer                                                     */

static int is_num_char(char c) {
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/* Rewrites every JSON number outside strings as the string "\u0001<text>",
 * so jansson hands us the number's exact decimal text instead of a double. */
static int mark_numbers(const char *in, size_t n, cg_buf *out) {
    size_t i = 0, start = 0;
    int in_str = 0;
    while (i < n) {
        char c = in[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
            i++;
            continue;
        }
        if (c == '"') {
            in_str = 1;
            i++;
            continue;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i;
            while (j < n && is_num_char(in[j]))
                j++;
            if (cg_buf_append(out, in + start, i - start) || cg_buf_puts(out, "\"\\u0001") ||
                cg_buf_append(out, in + i, j - i) || cg_buf_puts(out, "\""))
                return -1;
            i = start = j;
            continue;
        }
        i++;
    }
    if (i > n)
        i = n;
    return cg_buf_append(out, in + start, i - start);
}

static int read_file(const char *path, cg_buf *raw, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    int rc = -1;
    char chunk[16384];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (cg_buf_append(raw, chunk, got) != 0) {
            snprintf(err, errlen, "%s: larger than %zu MiB or out of memory", path,
                     LITELLM_FILE_MAX >> 20);
            goto done;
        }
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    fclose(f);
    return rc;
}

/* A number field as written in the file (after mark_numbers). Returns 1 and
 * its text if present, 0 if absent or null, -1 if present but not a number. */
static int num_text(const json_t *obj, const char *key, const char **txt, size_t *len) {
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n < 2 || s[0] != NUM_MARK)
        return -1;
    *txt = s + 1;
    *len = n - 1;
    return 1;
}

/* Price field in USD per token (scale 15 -> nano-USD per 1M tokens) or USD
 * per query (scale 12 -> nano-USD per 1000 queries). 0 ok, -1 bad value. */
static int price_field(const json_t *obj, const char *key, int scale, int64_t *out, int *rounded,
                       const char *model) {
    const char *txt;
    size_t len;
    *out = CG_PRICE_UNSET;
    int r = num_text(obj, key, &txt, &len);
    if (r == 0)
        return 0;
    if (r < 0) {
        CG_WARN("prices: %s: %s: not a number; model skipped", model, key);
        return -1;
    }
    int inexact, rc = cg_cost_dec_scale(txt, len, scale, out, &inexact);
    if (rc != CG_DEC_OK) {
        *out = CG_PRICE_UNSET;
        CG_WARN("prices: %s: %s: %s; model skipped", model, key, cg_cost_dec_strerror(rc));
        return -1;
    }
    *rounded += inexact;
    return 0;
}

/* Token limit: a non-negative integral number, else 0 (unknown). */
static int64_t limit_field(const json_t *obj, const char *key) {
    const char *txt;
    size_t len;
    int64_t v;
    int inexact;
    if (num_text(obj, key, &txt, &len) != 1 ||
        cg_cost_dec_scale(txt, len, 0, &v, &inexact) != CG_DEC_OK || inexact)
        return 0;
    return v;
}

typedef struct import_stats {
    int imported, kept, other_mode, unpriced, invalid, rounded;
} import_stats;

/* Fills p from one LiteLLM entry. 1 = usable, 0 = skipped (counted). */
static int entry_to_price(const char *name, const json_t *v, cg_price *p, import_stats *st) {
    const json_t *mode = json_object_get(v, "mode");
    const char *m = json_is_string(mode) ? json_string_value(mode) : "";
    memset(p, 0, sizeof *p);
    if (!strcmp(m, "chat") || !strcmp(m, "completion") || !strcmp(m, "responses")) {
        p->kind = CG_MODEL_CHAT;
    } else if (!strcmp(m, "embedding")) {
        p->kind = CG_MODEL_EMBEDDING;
    } else {
        st->other_mode++;
        return 0;
    }
    if (strlen(name) >= sizeof p->model) {
        CG_WARN("prices: model name longer than %zu bytes skipped", sizeof p->model - 1);
        st->invalid++;
        return 0;
    }
    snprintf(p->model, sizeof p->model, "%s", name);
    const json_t *prov = json_object_get(v, "litellm_provider");
    if (json_is_string(prov))
        snprintf(p->provider, sizeof p->provider, "%s", json_string_value(prov));

    int bad = 0, r = 0;
    bad |= price_field(v, "input_cost_per_token", 15, &p->input, &r, name);
    bad |= price_field(v, "cache_read_input_token_cost", 15, &p->cached_input, &r, name);
    bad |= price_field(v, "cache_creation_input_token_cost", 15, &p->cache_write_5m, &r, name);
    bad |= price_field(v, "cache_creation_input_token_cost_above_1hr", 15, &p->cache_write_1h, &r,
                       name);
    bad |= price_field(v, "output_cost_per_token", 15, &p->output, &r, name);
    bad |= price_field(v, "input_cost_per_token_batches", 15, &p->batch_input, &r, name);
    bad |= price_field(v, "output_cost_per_token_batches", 15, &p->batch_output, &r, name);
    p->web_search_per_1k = CG_PRICE_UNSET;
    const json_t *sc = json_object_get(v, "search_context_cost_per_query");
    if (json_is_object(sc))
        bad |= price_field(sc, "search_context_size_medium", 12, &p->web_search_per_1k, &r, name);
    if (bad) {
        st->invalid++;
        return 0;
    }
    if (p->kind == CG_MODEL_EMBEDDING && p->output < 0)
        p->output = 0;
    if (p->input < 0 || p->output < 0) {
        st->unpriced++; /* priced per second, per image, ...: not token-priced */
        return 0;
    }
    st->rounded += r;

    if (p->kind == CG_MODEL_CHAT) {
        p->max_output_tokens = limit_field(v, "max_output_tokens");
        if (!p->max_output_tokens)
            p->max_output_tokens = limit_field(v, "max_tokens");
        p->context_window = limit_field(v, "max_input_tokens");
    } else {
        p->context_window = limit_field(v, "max_input_tokens");
        if (!p->context_window)
            p->context_window = limit_field(v, "max_tokens");
    }
    /* Anthropic's published multipliers fill cache prices the file omits
     * (rounded half up at 1 nano-USD per 1M tokens). */
    if (!strcmp(p->provider, "anthropic") && p->input <= INT64_MAX / 5) {
        if (p->cached_input < 0)
            p->cached_input = (p->input + 5) / 10;
        if (p->cache_write_5m < 0)
            p->cache_write_5m = (p->input * 5 + 2) / 4;
        if (p->cache_write_1h < 0)
            p->cache_write_1h = p->input * 2;
    }
    return 1;
}

int cg_prices_load_litellm(cg_price_table *t, const char *path, int replace, char *err,
                           size_t errlen) {
    cg_buf raw, marked;
    json_t *root = NULL;
    json_error_t jerr;
    import_stats st = {0};
    int rc = -1;
    char dummy[1];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    cg_buf_init(&raw, LITELLM_FILE_MAX);
    cg_buf_init(&marked, LITELLM_FILE_MAX * 4);
    if (!t || !path) {
        snprintf(err, errlen, "no table or no path");
        goto done;
    }
    if (read_file(path, &raw, err, errlen) != 0)
        goto done;
    if (raw.len == 0) {
        snprintf(err, errlen, "%s: empty file", path);
        goto done;
    }
    if (mark_numbers(raw.data, raw.len, &marked) != 0) {
        snprintf(err, errlen, "%s: too large to import or out of memory", path);
        goto done;
    }
    cg_buf_free(&raw);
    root = json_loadb(marked.data, marked.len, 0, &jerr);
    if (!root) {
        /* Columns are shifted by the number rewrite; lines are not. */
        snprintf(err, errlen, "%s:%d: invalid JSON: %s", path, jerr.line, jerr.text);
        goto done;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s: top level must be an object of model name -> prices", path);
        goto done;
    }
    const char *name;
    json_t *v;
    json_object_foreach(root, name, v) {
        cg_price p;
        if (!strcmp(name, "sample_spec") || !json_is_object(v))
            continue;
        if (!entry_to_price(name, v, &p, &st))
            continue;
        if (!replace && find_n(t, p.model, strlen(p.model))) {
            st.kept++;
            continue;
        }
        if (cg_prices_set(t, &p) != 0) {
            snprintf(err, errlen, "%s: out of memory at model %s", path, name);
            goto done;
        }
        st.imported++;
    }
    CG_INFO("prices: imported %d models from %s (%d kept, %d not chat/embedding, "
            "%d without token prices, %d invalid, %d prices rounded below 1e-15 USD)",
            st.imported, path, st.kept, st.other_mode, st.unpriced, st.invalid, st.rounded);
    rc = st.imported;
done:
    json_decref(root);
    cg_buf_free(&raw);
    cg_buf_free(&marked);
    return rc;
}
