/* config_parse: the generic half of the config loader (see config_internal.h).
 *
 * Owns: error formatting, dotted field paths, mapping checks (unknown keys
 * with a "did you mean" hint, duplicate keys), ${VAR} / ${VAR:-default}
 * interpolation, and the typed scalar readers. It knows nothing of the
 * costgate schema; config.c does.
 */
#include "config/config_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/money.h"

#define SHOW_MAX 64 /* bytes of an offending value echoed in a message */

int cfg_line(const yaml_node_t *n) {
    return n ? (int)n->start_mark.line + 1 : 1;
}

const yaml_node_t *cfg_node(const cfg_ctx *x, int id) {
    return yaml_document_get_node(x->doc, id);
}

int cfg_fail(cfg_ctx *x, int line, const char *path, const char *fmt, ...) {
    if (!x->err || x->errlen == 0)
        return -1;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(x->err, x->errlen, "%s:%d: %s: %s", x->name, line, *path ? path : "(root)", msg);
    return -1;
}

/* Copies s[0..n) into out for display: control bytes become '?', long
 * values are cut with "...". */
static void show(char *out, size_t cap, const char *s, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[o++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    if (o < n && o + 4 <= cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

void cfg_path(char *out, size_t cap, const char *parent, const char *key, size_t keylen) {
    char k[160];
    show(k, sizeof k, key, keylen);
    if (parent && *parent)
        snprintf(out, cap, "%s.%s", parent, k);
    else
        snprintf(out, cap, "%s", k);
}

void cfg_path_idx(char *out, size_t cap, const char *parent, size_t i) {
    snprintf(out, cap, "%s[%zu]", parent, i);
}

const char *cfg_kind(const yaml_node_t *n) {
    if (!n)
        return "nothing";
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a sequence";
    default:
        return "a scalar";
    }
}

size_t cfg_map_size(const yaml_node_t *n) {
    return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

int cfg_is_null(const yaml_node_t *n) {
    if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        if (strlen(nulls[i]) == len && memcmp(nulls[i], v, len) == 0)
            return 1;
    return 0;
}

/* Edit distance of two short strings, for "did you mean" hints. */
static size_t edit_distance(const char *a, size_t an, const char *b, size_t bn) {
    size_t row[65];
    if (an > 64 || bn > 64)
        return (size_t)-1;
    for (size_t j = 0; j <= bn; j++)
        row[j] = j;
    for (size_t i = 1; i <= an; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= bn; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[bn];
}

static int key_is(const yaml_node_t *k, const char *name) {
    size_t n = strlen(name);
    return k->data.scalar.length == n && memcmp(k->data.scalar.value, name, n) == 0;
}

static int check_key(cfg_ctx *x, const yaml_node_t *k, const char *path,
                     const char *const *allowed) {
    char p[CFG_PATH_MAX];
    if (k->type != YAML_SCALAR_NODE)
        return cfg_fail(x, cfg_line(k), path, "mapping keys must be scalars, got %s", cfg_kind(k));
    cfg_path(p, sizeof p, path, (const char *)k->data.scalar.value, k->data.scalar.length);
    if (!allowed)
        return 0;
    const char *best = NULL;
    size_t best_d = 3; /* suggest only within two edits */
    for (size_t i = 0; allowed[i]; i++) {
        if (key_is(k, allowed[i]))
            return 0;
        size_t d = edit_distance((const char *)k->data.scalar.value, k->data.scalar.length,
                                 allowed[i], strlen(allowed[i]));
        if (d < best_d) {
            best_d = d;
            best = allowed[i];
        }
    }
    if (best)
        return cfg_fail(x, cfg_line(k), p, "unknown field (did you mean \"%s\"?)", best);
    return cfg_fail(x, cfg_line(k), p, "unknown field");
}

int cfg_check_map(cfg_ctx *x, const yaml_node_t *n, const char *path, const char *const *allowed) {
    if (n->type != YAML_MAPPING_NODE)
        return cfg_fail(x, cfg_line(n), path, "expected a mapping, got %s", cfg_kind(n));
    yaml_node_pair_t *start = n->data.mapping.pairs.start;
    yaml_node_pair_t *top = n->data.mapping.pairs.top;
    for (yaml_node_pair_t *a = start; a < top; a++) {
        const yaml_node_t *k = cfg_node(x, a->key);
        if (check_key(x, k, path, allowed) < 0)
            return -1;
        for (yaml_node_pair_t *b = start; b < a; b++) {
            const yaml_node_t *kb = cfg_node(x, b->key);
            if (kb->data.scalar.length == k->data.scalar.length &&
                memcmp(kb->data.scalar.value, k->data.scalar.value, k->data.scalar.length) == 0) {
                char p[CFG_PATH_MAX];
                cfg_path(p, sizeof p, path, (const char *)k->data.scalar.value,
                         k->data.scalar.length);
                return cfg_fail(x, cfg_line(k), p, "duplicate key (first at line %d)",
                                cfg_line(kb));
            }
        }
    }
    return 0;
}

int cfg_check_seq(cfg_ctx *x, const yaml_node_t *n, const char *path) {
    if (n->type != YAML_SEQUENCE_NODE)
        return cfg_fail(x, cfg_line(n), path, "expected a sequence, got %s", cfg_kind(n));
    return 0;
}

int cfg_field_get(const cfg_ctx *x, const yaml_node_t *map, const char *parent, const char *key,
                  cfg_field *f) {
    cfg_path(f->path, sizeof f->path, parent, key, strlen(key));
    f->v = NULL;
    f->line = cfg_line(map);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *k = cfg_node(x, p->key);
        if (!key_is(k, key))
            continue;
        const yaml_node_t *v = cfg_node(x, p->value);
        f->line = cfg_line(v ? v : k);
        if (v && !cfg_is_null(v))
            f->v = v;
        break;
    }
    return f->v != NULL;
}

int cfg_required(cfg_ctx *x, const cfg_field *f) {
    return cfg_fail(x, f->line, f->path, "is required");
}

static int is_name_start(char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static int is_name_char(char ch) {
    return is_name_start(ch) || (ch >= '0' && ch <= '9');
}

int cfg_interp(cfg_ctx *x, int line, const char *path, const char *in, size_t n, cg_buf *out) {
    size_t i = 0;
    while (i < n) {
        const char *lit = in + i;
        size_t litlen = 1, adv = 1;
        char name[256];
        const char *val = NULL;
        if (in[i] == '$' && i + 2 < n && in[i + 1] == '$' && in[i + 2] == '{') {
            lit = "${"; /* $${ is a literal ${ */
            litlen = 2;
            adv = 3;
        } else if (in[i] == '$' && i + 1 < n && in[i + 1] == '{') {
            size_t j = i + 2;
            while (j < n && is_name_char(in[j]))
                j++;
            size_t nlen = j - (i + 2);
            if (nlen == 0 || !is_name_start(in[i + 2]) || nlen >= sizeof name)
                return cfg_fail(x, line, path,
                                "bad ${...}: the variable name must match [A-Za-z_][A-Za-z0-9_]* "
                                "(at most 255 bytes)");
            memcpy(name, in + i + 2, nlen);
            name[nlen] = '\0';
            val = getenv(name);
            if (j < n && in[j] == '}') {
                if (!val)
                    return cfg_fail(x, line, path,
                                    "environment variable %s is not set (no ${%s:-default} given)",
                                    name, name);
                adv = j + 1 - i;
            } else if (j + 1 < n && in[j] == ':' && in[j + 1] == '-') {
                const char *def = in + j + 2;
                const char *end = memchr(def, '}', n - (j + 2));
                if (!end)
                    return cfg_fail(x, line, path, "unterminated ${%s:-...}", name);
                if (!val || !*val) {
                    val = NULL;
                    lit = def;
                    litlen = (size_t)(end - def);
                }
                adv = (size_t)(end + 1 - (in + i));
            } else {
                return cfg_fail(x, line, path, "bad ${%s...}: use ${%s} or ${%s:-default}", name,
                                name, name);
            }
        }
        int rc = val ? cg_buf_puts(out, val) : cg_buf_append(out, lit, litlen);
        if (rc != 0)
            return cfg_fail(x, line, path, "value too long (max %d bytes after interpolation)",
                            CFG_SCALAR_MAX);
        i += adv;
    }
    return 0;
}

int cfg_text(cfg_ctx *x, const cfg_field *f, cg_buf *out) {
    const yaml_node_t *v = f->v;
    if (v->type != YAML_SCALAR_NODE)
        return cfg_fail(x, f->line, f->path, "expected a scalar, got %s", cfg_kind(v));
    cg_buf_reset(out);
    if (cg_buf_append(out, "", 0) != 0)
        return cfg_fail(x, f->line, f->path, "out of memory");
    if (cfg_interp(x, f->line, f->path, (const char *)v->data.scalar.value, v->data.scalar.length,
                   out) < 0)
        return -1;
    if (memchr(out->data, '\0', out->len))
        return cfg_fail(x, f->line, f->path, "contains a NUL byte");
    return 0;
}

int cfg_str(cfg_ctx *x, const cfg_field *f, char *out, size_t cap) {
    cg_buf b;
    int rc = -1;
    cg_buf_init(&b, CFG_SCALAR_MAX);
    if (cfg_text(x, f, &b) < 0)
        goto done;
    if (b.len >= cap) {
        cfg_fail(x, f->line, f->path, "too long (%zu bytes, max %zu)", b.len, cap - 1);
        goto done;
    }
    memcpy(out, b.data, b.len + 1);
    rc = 0;
done:
    cg_buf_free(&b);
    return rc;
}

/* Parses an optionally negative decimal integer with no leading zeros. */
static int parse_int(const char *s, size_t n, int64_t *out) {
    size_t i = 0;
    int neg = 0;
    if (i < n && s[i] == '-') {
        neg = 1;
        i++;
    }
    if (i == n || (s[i] == '0' && n - i > 1))
        return -1;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return -1;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

int cfg_int(cfg_ctx *x, const cfg_field *f, int64_t min, int64_t max, int64_t *out) {
    cg_buf b;
    int rc = -1;
    int64_t v;
    char shown[SHOW_MAX + 4];
    cg_buf_init(&b, CFG_SCALAR_MAX);
    if (cfg_text(x, f, &b) < 0)
        goto done;
    if (parse_int(b.data, b.len, &v) < 0 || v < min || v > max) {
        show(shown, sizeof shown, b.data, b.len);
        cfg_fail(x, f->line, f->path, "must be an integer in %lld..%lld (got \"%s\")",
                 (long long)min, (long long)max, shown);
        goto done;
    }
    *out = v;
    rc = 0;
done:
    cg_buf_free(&b);
    return rc;
}

int cfg_size(cfg_ctx *x, const cfg_field *f, int64_t min, int64_t max, int64_t *out) {
    static const struct {
        const char *suffix;
        int shift;
    } units[] = {{"", 0}, {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}};
    cg_buf b;
    int rc = -1;
    char shown[SHOW_MAX + 4];
    cg_buf_init(&b, CFG_SCALAR_MAX);
    if (cfg_text(x, f, &b) < 0)
        goto done;
    size_t digits = 0;
    while (digits < b.len && b.data[digits] >= '0' && b.data[digits] <= '9')
        digits++;
    const char *suf = b.data + digits;
    if (suf[0] == ' ' && suf[1] != '\0')
        suf++; /* "4 MiB" */
    int64_t v = -1, n;
    for (size_t i = 0; i < sizeof units / sizeof units[0] && digits > 0; i++) {
        if (strcmp(suf, units[i].suffix) != 0)
            continue;
        if (parse_int(b.data, digits, &n) == 0 && n <= (INT64_MAX >> units[i].shift))
            v = n << units[i].shift;
        break;
    }
    if (v < min || v > max) {
        show(shown, sizeof shown, b.data, b.len);
        cfg_fail(x, f->line, f->path,
                 "must be a byte count in %lld..%lld, as an integer or with a KiB/MiB/GiB "
                 "suffix (got \"%s\")",
                 (long long)min, (long long)max, shown);
        goto done;
    }
    *out = v;
    rc = 0;
done:
    cg_buf_free(&b);
    return rc;
}

int cfg_bool(cfg_ctx *x, const cfg_field *f, int *out) {
    static const char *const names[] = {"false", "true", "no", "yes", NULL};
    cg_buf b;
    int rc = -1;
    char shown[SHOW_MAX + 4];
    cg_buf_init(&b, CFG_SCALAR_MAX);
    if (cfg_text(x, f, &b) < 0)
        goto done;
    for (int i = 0; names[i]; i++) {
        if (strcasecmp(b.data, names[i]) == 0) {
            *out = i & 1;
            rc = 0;
            goto done;
        }
    }
    show(shown, sizeof shown, b.data, b.len);
    cfg_fail(x, f->line, f->path, "must be true or false (got \"%s\")", shown);
done:
    cg_buf_free(&b);
    return rc;
}

int cfg_enum(cfg_ctx *x, const cfg_field *f, const char *const *names, int *out) {
    cg_buf b;
    int rc = -1;
    char shown[SHOW_MAX + 4], list[256] = "";
    cg_buf_init(&b, CFG_SCALAR_MAX);
    if (cfg_text(x, f, &b) < 0)
        goto done;
    for (int i = 0; names[i]; i++) {
        if (strcmp(b.data, names[i]) == 0) {
            *out = i;
            rc = 0;
            goto done;
        }
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", i ? "|" : "", names[i]);
    }
    show(shown, sizeof shown, b.data, b.len);
    cfg_fail(x, f->line, f->path, "must be one of %s (got \"%s\")", list, shown);
done:
    cg_buf_free(&b);
    return rc;
}

static int usd_amount(cfg_ctx *x, const cfg_field *f, const char *what, int64_t *out) {
    cg_buf b;
    int rc = -1;
    char shown[SHOW_MAX + 4];
    cg_buf_init(&b, CFG_SCALAR_MAX);
    if (cfg_text(x, f, &b) < 0)
        goto done;
    /* The YAML text itself is parsed ("2.5" stays exact); never a double. */
    if (cg_money_parse_usd(b.data, out) != 0) {
        show(shown, sizeof shown, b.data, b.len);
        cfg_fail(x, f->line, f->path,
                 "must be a non-negative decimal USD amount%s with at most 9 decimals (got \"%s\")",
                 what, shown);
        goto done;
    }
    rc = 0;
done:
    cg_buf_free(&b);
    return rc;
}

int cfg_price(cfg_ctx *x, const cfg_field *f, int64_t *out) {
    return usd_amount(x, f, " per 1M tokens", out);
}

int cfg_usd(cfg_ctx *x, const cfg_field *f, int64_t *out) {
    return usd_amount(x, f, "", out);
}

int cfg_hash(cfg_ctx *x, const cfg_field *f, uint8_t out[32]) {
    cg_buf b;
    int rc = -1;
    cg_buf_init(&b, CFG_SCALAR_MAX);
    if (cfg_text(x, f, &b) < 0)
        goto done;
    /* The value is never echoed: a raw key pasted here by mistake must not
     * reach a log. */
    if (b.len != 64 || cg_unhex(b.data, out, 32) != 0) {
        cfg_fail(x, f->line, f->path,
                 "must be exactly 64 hex characters (the SHA-256 of the key; make one with "
                 "printf %%s KEY | sha256sum)");
        goto done;
    }
    rc = 0;
done:
    cg_buf_free(&b);
    return rc;
}

static int parse_port(const char *s, int *port) {
    int64_t v;
    if (parse_int(s, strlen(s), &v) != 0 || v < 0 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

int cfg_listen(cfg_ctx *x, const cfg_field *f, char *host, size_t hostcap, int *port) {
    cg_buf b;
    int rc = -1;
    char shown[SHOW_MAX + 4];
    cg_buf_init(&b, CFG_SCALAR_MAX);
    if (cfg_text(x, f, &b) < 0)
        goto done;
    const char *s = b.data, *h = s, *colon;
    size_t hlen;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        colon = close ? close + 1 : NULL;
        if (!colon || *colon != ':')
            goto bad;
        h = s + 1;
        hlen = (size_t)(close - h);
        if (hlen == 0 || memchr(h, ':', hlen) == NULL)
            goto bad;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)) != NULL)
            goto bad; /* a bare IPv6 address needs brackets */
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || parse_port(colon + 1, port) != 0)
        goto bad;
    for (size_t i = 0; i < hlen; i++)
        if ((unsigned char)h[i] <= ' ' || h[i] == 0x7f || h[i] == '/' || h[i] == '[' || h[i] == ']')
            goto bad;
    if (hlen >= hostcap) {
        cfg_fail(x, f->line, f->path, "host too long (max %zu bytes)", hostcap - 1);
        goto done;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    rc = 0;
    goto done;
bad:
    show(shown, sizeof shown, b.data, b.len);
    cfg_fail(x, f->line, f->path,
             "must be host:port with port 0..65535, IPv6 as [::1]:8080 (got \"%s\")", shown);
done:
    cg_buf_free(&b);
    return rc;
}

typedef struct dup_ent {
    const void *k;
    size_t len;
    size_t idx;
} dup_ent;

static int dup_cmp(const void *a, const void *b) {
    const dup_ent *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->k, y->k, n);
    if (c == 0 && x->len != y->len)
        c = x->len < y->len ? -1 : 1;
    if (c == 0)
        c = x->idx < y->idx ? -1 : (x->idx > y->idx);
    return c;
}

long cfg_find_dup(const void *const *keys, const size_t *lens, size_t n, size_t *first) {
    if (n < 2)
        return 0;
    dup_ent *e = calloc(n, sizeof *e);
    if (!e)
        return -1;
    for (size_t i = 0; i < n; i++)
        e[i] = (dup_ent){keys[i], lens[i], i};
    qsort(e, n, sizeof *e, dup_cmp);
    long found = 0;
    size_t group = 0; /* start of the current run of equal keys */
    for (size_t i = 1; i < n; i++) {
        if (e[i].len != e[group].len || memcmp(e[i].k, e[group].k, e[i].len) != 0) {
            group = i;
            continue;
        }
        /* e[group] is the earliest of the run; report the earliest repeat. */
        if (found == 0 || e[i].idx < (size_t)found) {
            found = (long)e[i].idx;
            *first = e[group].idx;
        }
    }
    free(e);
    return found;
}
