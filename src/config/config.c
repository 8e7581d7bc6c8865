/* config: the costgate configuration schema (see config.h).
 *
 * Owns: reading the file (capped), driving libyaml's document loader, the
 * schema of every section (server, admin, ledger, pricing, providers, keys),
 * defaults, cross-field validation, and the two run-time lookups:
 * provider-for-model and key-by-hash. Generic YAML walking, interpolation and
 * scalar typing live in config_parse.c.
 */
#include "config/config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/config_internal.h"
#include "core/hash.h"

#define PROVIDERS_MAX 256
#define PATTERN_MAX 255 /* bytes of one provider model pattern */
#define WORKERS_MAX 64

static const char *const API_NAMES[] = {"openai", "anthropic", NULL};
static const char *const API_URLS[] = {"https://api.openai.com", "https://api.anthropic.com"};

static void set_defaults(cg_config *c) {
    static atomic_uint_fast64_t generation;
    c->generation = atomic_fetch_add(&generation, 1) + 1;
    snprintf(c->listen_host, sizeof c->listen_host, "127.0.0.1");
    c->listen_port = 8080;
    c->workers = 0;
    c->max_body_bytes = 4u << 20;
    c->connect_timeout_ms = 5000;
    c->first_byte_timeout_ms = 120000;
    c->idle_timeout_ms = 60000;
    c->drain_timeout_ms = 10000;
    c->drain_max_bytes = 4u << 20;
    snprintf(c->log_level, sizeof c->log_level, "info");
    snprintf(c->ledger_path, sizeof c->ledger_path, "var/ledger.db");
    c->ledger_batch_max = 256;
    c->ledger_spool = 1;
    c->ledger_spool_slots = 4096;
    c->ledger_commit_delay_ms = 10;
    c->ledger_predict_every = 16;
    c->allow_unpriced = 0;
}

/* ---- small typed wrappers: absent/null fields keep their default ---- */

static int opt_str(cfg_ctx *x, const yaml_node_t *map, const char *parent, const char *key,
                   char *out, size_t cap) {
    cfg_field f;
    if (!cfg_field_get(x, map, parent, key, &f))
        return 0;
    return cfg_str(x, &f, out, cap);
}

static int opt_int(cfg_ctx *x, const yaml_node_t *map, const char *parent, const char *key,
                   int64_t min, int64_t max, int *out) {
    cfg_field f;
    int64_t v;
    if (!cfg_field_get(x, map, parent, key, &f))
        return 0;
    if (cfg_int(x, &f, min, max, &v) < 0)
        return -1;
    *out = (int)v;
    return 0;
}

static int opt_size(cfg_ctx *x, const yaml_node_t *map, const char *parent, const char *key,
                    int64_t min, int64_t max, size_t *out) {
    cfg_field f;
    int64_t v;
    if (!cfg_field_get(x, map, parent, key, &f))
        return 0;
    if (cfg_size(x, &f, min, max, &v) < 0)
        return -1;
    *out = (size_t)v;
    return 0;
}

/* Fails if s has control characters or spaces (ident: only [A-Za-z0-9_.-])
 * or is empty when nonempty is set. */
static int check_name(cfg_ctx *x, const cfg_field *f, const char *s, int ident, int nonempty) {
    if (nonempty && !*s)
        return cfg_fail(x, f->line, f->path, "must not be empty");
    for (const char *p = s; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch < 0x20 || ch == 0x7f)
            return cfg_fail(x, f->line, f->path, "must not contain control characters");
        if (ident && !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                       (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.'))
            return cfg_fail(x, f->line, f->path,
                            "may only contain letters, digits, '_', '-' and '.'");
    }
    return 0;
}

/* A required string field checked with check_name. */
static int req_name(cfg_ctx *x, const yaml_node_t *map, const char *parent, const char *key,
                    char *out, size_t cap, int ident) {
    cfg_field f;
    if (!cfg_field_get(x, map, parent, key, &f))
        return cfg_required(x, &f);
    if (cfg_str(x, &f, out, cap) < 0)
        return -1;
    return check_name(x, &f, out, ident, 1);
}

/* ---- server, admin, ledger ---- */

static int parse_timeouts(cfg_ctx *x, const yaml_node_t *srv, cg_config *c) {
    static const char *const keys[] = {"connect_ms", "first_byte_ms", "idle_ms", "drain_ms", NULL};
    const struct {
        int64_t min, max;
        int *dst;
    } t[] = {{1, 600000, &c->connect_timeout_ms},
             {1, 3600000, &c->first_byte_timeout_ms},
             {1, 3600000, &c->idle_timeout_ms},
             {0, 600000, &c->drain_timeout_ms}};
    cfg_field sec;
    if (!cfg_field_get(x, srv, "server", "timeouts", &sec))
        return 0;
    if (cfg_check_map(x, sec.v, sec.path, keys) < 0)
        return -1;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (opt_int(x, sec.v, sec.path, keys[i], t[i].min, t[i].max, t[i].dst) < 0)
            return -1;
    return 0;
}

static int parse_server(cfg_ctx *x, const yaml_node_t *root, cg_config *c) {
    static const char *const keys[] = {
        "listen", "workers", "max_body_bytes", "log_level", "timeouts", "drain_max_bytes", NULL};
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    cfg_field sec, f;
    int lvl;
    if (!cfg_field_get(x, root, "", "server", &sec))
        return 0;
    if (cfg_check_map(x, sec.v, "server", keys) < 0)
        return -1;
    if (cfg_field_get(x, sec.v, "server", "listen", &f) &&
        cfg_listen(x, &f, c->listen_host, sizeof c->listen_host, &c->listen_port) < 0)
        return -1;
    if (opt_int(x, sec.v, "server", "workers", 0, WORKERS_MAX, &c->workers) < 0)
        return -1;
    if (opt_size(x, sec.v, "server", "max_body_bytes", 1024, CFG_SIZE_MAX, &c->max_body_bytes) < 0)
        return -1;
    if (cfg_field_get(x, sec.v, "server", "log_level", &f)) {
        if (cfg_enum(x, &f, levels, &lvl) < 0)
            return -1;
        snprintf(c->log_level, sizeof c->log_level, "%s", levels[lvl]);
    }
    if (parse_timeouts(x, sec.v, c) < 0)
        return -1;
    return opt_size(x, sec.v, "server", "drain_max_bytes", 0, CFG_SIZE_MAX, &c->drain_max_bytes);
}

static int parse_admin(cfg_ctx *x, const yaml_node_t *root, cg_config *c) {
    static const char *const keys[] = {"listen", "key_sha256", NULL};
    cfg_field sec, f;
    if (!cfg_field_get(x, root, "", "admin", &sec))
        return 0;
    if (cfg_check_map(x, sec.v, "admin", keys) < 0)
        return -1;
    if (cfg_field_get(x, sec.v, "admin", "listen", &f)) {
        if (cfg_listen(x, &f, c->admin_listen_host, sizeof c->admin_listen_host,
                       &c->admin_listen_port) < 0)
            return -1;
        if (c->admin_listen_port != 0 && c->admin_listen_port == c->listen_port &&
            strcasecmp(c->admin_listen_host, c->listen_host) == 0)
            return cfg_fail(x, f.line, f.path, "must differ from server.listen");
    }
    if (cfg_field_get(x, sec.v, "admin", "key_sha256", &f)) {
        if (cfg_hash(x, &f, c->admin_key_sha256) < 0)
            return -1;
        c->has_admin_key = 1;
    }
    return 0;
}

static int parse_ledger(cfg_ctx *x, const yaml_node_t *root, cg_config *c) {
    static const char *const keys[] = {
        "path", "batch_max", "spool", "spool_slots", "commit_delay_ms", "predict_every", NULL};
    cfg_field sec, f;
    if (!cfg_field_get(x, root, "", "ledger", &sec))
        return 0;
    if (cfg_check_map(x, sec.v, "ledger", keys) < 0)
        return -1;
    if (cfg_field_get(x, sec.v, "ledger", "path", &f) &&
        (cfg_str(x, &f, c->ledger_path, sizeof c->ledger_path) < 0 ||
         check_name(x, &f, c->ledger_path, 0, 1) < 0))
        return -1;
    if (cfg_field_get(x, sec.v, "ledger", "spool", &f) && cfg_bool(x, &f, &c->ledger_spool) < 0)
        return -1;
    if (opt_int(x, sec.v, "ledger", "spool_slots", 64, 1 << 20, &c->ledger_spool_slots) < 0 ||
        opt_int(x, sec.v, "ledger", "commit_delay_ms", 0, 1000, &c->ledger_commit_delay_ms) < 0 ||
        opt_int(x, sec.v, "ledger", "predict_every", 0, 1 << 20, &c->ledger_predict_every) < 0)
        return -1;
    return opt_int(x, sec.v, "ledger", "batch_max", 1, 65536, &c->ledger_batch_max);
}

/* ---- providers ---- */

static int parse_base_url(cfg_ctx *x, const cfg_field *f, char *out, size_t cap) {
    cg_buf b;
    int rc = -1;
    cg_buf_init(&b, CFG_SCALAR_MAX);
    if (cfg_text(x, f, &b) < 0)
        goto done;
    size_t skip = strncasecmp(b.data, "https://", 8) == 0  ? 8
                  : strncasecmp(b.data, "http://", 7) == 0 ? 7
                                                           : 0;
    const char *auth = b.data + skip, *problem = NULL;
    size_t alen = strcspn(auth, "/?#");
    const char *port = memchr(auth, ':', alen);
    if (alen && auth[0] == '[') {
        const char *close = memchr(auth, ']', alen);
        port = close && close + 1 < auth + alen && close[1] == ':' ? close + 1 : NULL;
        if (!close || (close + 1 < auth + alen && close[1] != ':'))
            problem = "has a malformed IPv6 host";
    }
    if (!skip)
        problem = "must start with http:// or https://";
    else if (alen == 0 || (port && port == auth))
        problem = "has no host";
    else if (strpbrk(b.data, "?#"))
        problem = "must not contain a query or fragment";
    else if (memchr(auth, '@', alen))
        problem = "must not contain credentials (name the key's variable in api_key_env)";
    for (size_t i = 0; i < b.len && !problem; i++)
        if ((unsigned char)b.data[i] <= ' ' || b.data[i] == 0x7f)
            problem = "must not contain spaces or control characters";
    if (!problem && port) {
        size_t plen = (size_t)(auth + alen - (port + 1));
        long pv = 0;
        for (size_t i = 0; i < plen && pv <= 65535; i++)
            pv = (port[1 + i] >= '0' && port[1 + i] <= '9') ? pv * 10 + (port[1 + i] - '0') : -1;
        if (plen == 0 || plen > 5 || pv < 1 || pv > 65535)
            problem = "has a bad port (1..65535)";
    }
    if (problem) {
        cfg_fail(x, f->line, f->path, "%s", problem);
        goto done;
    }
    while (b.len > skip + alen && b.data[b.len - 1] == '/')
        b.data[--b.len] = '\0'; /* no trailing slash kept */
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

static int parse_models(cfg_ctx *x, const cfg_field *f, cg_provider_cfg *p) {
    if (cfg_check_seq(x, f->v, f->path) < 0)
        return -1;
    size_t n = (size_t)(f->v->data.sequence.items.top - f->v->data.sequence.items.start);
    if (n == 0)
        return 0;
    p->models = calloc(n, sizeof *p->models);
    if (!p->models)
        return cfg_fail(x, f->line, f->path, "out of memory");
    for (size_t i = 0; i < n; i++) {
        cfg_field m = {.v = cfg_node(x, f->v->data.sequence.items.start[i])};
        char pat[PATTERN_MAX + 1];
        m.line = cfg_line(m.v);
        cfg_path_idx(m.path, sizeof m.path, f->path, i);
        if (cfg_is_null(m.v))
            return cfg_fail(x, m.line, m.path, "must not be empty");
        if (cfg_str(x, &m, pat, sizeof pat) < 0)
            return -1;
        char *star = strchr(pat, '*');
        if (!*pat || (star && star[1] != '\0') || strpbrk(pat, " \t\r\n"))
            return cfg_fail(x, m.line, m.path,
                            "must be a model name, or a prefix ending in a single trailing '*'");
        p->models[i] = strdup(pat);
        if (!p->models[i])
            return cfg_fail(x, m.line, m.path, "out of memory");
        p->n_models++;
    }
    return 0;
}

static int parse_provider(cfg_ctx *x, const yaml_node_t *n, const char *path, cg_provider_cfg *p) {
    static const char *const keys[] = {"name",   "api",      "base_url", "api_key_env",
                                       "models", "failover", "ca_file",  NULL};
    cfg_field f;
    int api;
    if (cfg_check_map(x, n, path, keys) < 0)
        return -1;
    if (req_name(x, n, path, "name", p->name, sizeof p->name, 1) < 0)
        return -1;
    if (!cfg_field_get(x, n, path, "api", &f))
        return cfg_required(x, &f);
    if (cfg_enum(x, &f, API_NAMES, &api) < 0)
        return -1;
    p->api = (cg_api)api;
    snprintf(p->base_url, sizeof p->base_url, "%s", API_URLS[api]);
    if (cfg_field_get(x, n, path, "base_url", &f) &&
        parse_base_url(x, &f, p->base_url, sizeof p->base_url) < 0)
        return -1;
    if (cfg_field_get(x, n, path, "api_key_env", &f)) {
        if (cfg_str(x, &f, p->api_key_env, sizeof p->api_key_env) < 0)
            return -1;
        const char *s = p->api_key_env;
        int ok = !*s || (*s < '0' || *s > '9');
        for (; *s && ok; s++)
            ok = (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
                 *s == '_';
        if (!ok)
            return cfg_fail(x, f.line, f.path,
                            "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
    }
    if (cfg_field_get(x, n, path, "models", &f) && parse_models(x, &f, p) < 0)
        return -1;
    if (cfg_field_get(x, n, path, "ca_file", &f)) {
        if (cfg_str(x, &f, p->ca_file, sizeof p->ca_file) < 0 ||
            check_name(x, &f, p->ca_file, 0, 1) < 0)
            return -1;
        if (strncasecmp(p->base_url, "https://", 8) != 0)
            return cfg_fail(x, f.line, f.path, "needs an https:// base_url");
        if (access(p->ca_file, R_OK) != 0)
            return cfg_fail(x, f.line, f.path, "cannot read %s: %s", p->ca_file, strerror(errno));
    }
    p->failover = -1;
    if (cfg_field_get(x, n, path, "failover", &f)) {
        if (cfg_str(x, &f, p->failover_name, sizeof p->failover_name) < 0)
            return -1;
        p->failover_line = f.line;
    }
    return 0;
}

/* Each provider's `failover` names another provider of the same API. */
static int resolve_failover(cfg_ctx *x, cg_config *c) {
    for (size_t i = 0; i < c->n_providers; i++) {
        cg_provider_cfg *p = &c->providers[i];
        if (!p->failover_name[0])
            continue;
        char path[CFG_PATH_MAX];
        snprintf(path, sizeof path, "providers[%zu].failover", i);
        for (size_t j = 0; j < c->n_providers; j++)
            if (j != i && strcmp(c->providers[j].name, p->failover_name) == 0)
                p->failover = (int)j;
        if (p->failover < 0)
            return cfg_fail(x, p->failover_line, path,
                            "names no other configured provider (\"%s\")", p->failover_name);
        if (c->providers[p->failover].api != p->api)
            return cfg_fail(x, p->failover_line, path,
                            "provider \"%s\" speaks another API; failover needs the same API",
                            p->failover_name);
    }
    return 0;
}

/* Fails when two entries of seq share a field value. Entries are stride
 * bytes apart from base + off; len 0 means NUL-terminated text (which is
 * echoed in the message), else fixed-size bytes (never echoed). */
static int check_unique(cfg_ctx *x, const yaml_node_t *seq, const char *path, const char *field,
                        const void *base, size_t stride, size_t off, size_t len) {
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start), first = 0;
    const void **k = calloc(n ? n : 1, sizeof *k);
    size_t *l = calloc(n ? n : 1, sizeof *l);
    int rc = -1;
    if (!k || !l) {
        cfg_fail(x, cfg_line(seq), path, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        k[i] = (const char *)base + i * stride + off;
        l[i] = len ? len : strlen(k[i]);
    }
    long d = cfg_find_dup(k, l, n, &first);
    if (d < 0) {
        cfg_fail(x, cfg_line(seq), path, "out of memory");
        goto done;
    }
    if (d > 0) {
        char item[CFG_PATH_MAX], firstp[CFG_PATH_MAX];
        cfg_field f, g;
        cfg_path_idx(item, sizeof item, path, (size_t)d);
        cfg_path_idx(firstp, sizeof firstp, path, first);
        cfg_field_get(x, cfg_node(x, seq->data.sequence.items.start[d]), item, field, &f);
        cfg_field_get(x, cfg_node(x, seq->data.sequence.items.start[first]), firstp, field, &g);
        if (len)
            cfg_fail(x, f.line, f.path, "duplicate %s (same as %s at line %d)", field, firstp,
                     g.line);
        else
            cfg_fail(x, f.line, f.path, "duplicate %s \"%s\" (same as %s at line %d)", field,
                     (const char *)k[d], firstp, g.line);
        goto done;
    }
    rc = 0;
done:
    free(k);
    free(l);
    return rc;
}

/* A required, non-empty sequence; returns its length or -1. */
static long req_seq(cfg_ctx *x, const yaml_node_t *root, const char *key, cfg_field *f) {
    if (!cfg_field_get(x, root, "", key, f))
        return cfg_required(x, f);
    if (cfg_check_seq(x, f->v, f->path) < 0)
        return -1;
    long n = (long)(f->v->data.sequence.items.top - f->v->data.sequence.items.start);
    if (n == 0)
        return cfg_fail(x, f->line, f->path, "must list at least one entry");
    return n;
}

static int parse_providers(cfg_ctx *x, const yaml_node_t *root, cg_config *c) {
    cfg_field f;
    long n = req_seq(x, root, "providers", &f);
    if (n < 0)
        return -1;
    if (n > PROVIDERS_MAX)
        return cfg_fail(x, f.line, f.path, "too many providers (max %d)", PROVIDERS_MAX);
    c->providers = calloc((size_t)n, sizeof *c->providers);
    if (!c->providers)
        return cfg_fail(x, f.line, f.path, "out of memory");
    for (long i = 0; i < n; i++) {
        char path[CFG_PATH_MAX];
        cfg_path_idx(path, sizeof path, "providers", (size_t)i);
        c->n_providers++; /* counted first so a partial entry is freed */
        if (parse_provider(x, cfg_node(x, f.v->data.sequence.items.start[i]), path,
                           &c->providers[i]) < 0)
            return -1;
    }
    if (check_unique(x, f.v, "providers", "name", c->providers, sizeof *c->providers,
                     offsetof(cg_provider_cfg, name), 0) < 0)
        return -1;
    return resolve_failover(x, c);
}

/* ---- pricing ---- */

static int parse_model_price(cfg_ctx *x, const yaml_node_t *k, const yaml_node_t *v,
                             const char *path, const cg_config *c, cg_price *p) {
    static const char *const keys[] = {"provider",
                                       "kind",
                                       "input",
                                       "cached_input",
                                       "cache_write_5m",
                                       "cache_write_1h",
                                       "output",
                                       "batch_input",
                                       "batch_output",
                                       "max_output_tokens",
                                       "context_window",
                                       "web_search_per_1k",
                                       NULL};
    static const char *const kinds[] = {"chat", "embedding", NULL};
    const struct {
        const char *key;
        int64_t *dst;
    } opt[] = {
        {"cached_input", &p->cached_input},     {"cache_write_5m", &p->cache_write_5m},
        {"cache_write_1h", &p->cache_write_1h}, {"batch_input", &p->batch_input},
        {"batch_output", &p->batch_output},     {"web_search_per_1k", &p->web_search_per_1k}};
    cfg_field f;
    int kind = CG_MODEL_CHAT;
    size_t namelen = k->data.scalar.length;
    const char *name = (const char *)k->data.scalar.value;
    if (namelen == 0 || namelen >= sizeof p->model || strcspn(name, " \t\r\n") < namelen ||
        memchr(name, '\0', namelen))
        return cfg_fail(x, cfg_line(k), path, "model name must be 1..%zu bytes without spaces",
                        sizeof p->model - 1);
    if (cfg_is_null(v))
        return cfg_fail(x, cfg_line(v), path, "expected a mapping of prices, got nothing");
    if (cfg_check_map(x, v, path, keys) < 0)
        return -1;
    memcpy(p->model, name, namelen);
    p->input = p->cached_input = p->cache_write_5m = p->cache_write_1h = CG_PRICE_UNSET;
    p->output = p->batch_input = p->batch_output = p->web_search_per_1k = CG_PRICE_UNSET;
    if (opt_str(x, v, path, "provider", p->provider, sizeof p->provider) < 0)
        return -1;
    if (cfg_field_get(x, v, path, "kind", &f) && cfg_enum(x, &f, kinds, &kind) < 0)
        return -1;
    p->kind = (cg_model_kind)kind;
    if (!cfg_field_get(x, v, path, "input", &f))
        return cfg_required(x, &f);
    if (cfg_price(x, &f, &p->input) < 0)
        return -1;
    if (cfg_field_get(x, v, path, "output", &f)) {
        if (cfg_price(x, &f, &p->output) < 0)
            return -1;
    } else if (kind == CG_MODEL_CHAT) {
        return cfg_required(x, &f);
    } else {
        p->output = 0; /* embeddings produce no output tokens */
    }
    for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++)
        if (cfg_field_get(x, v, path, opt[i].key, &f) && cfg_price(x, &f, opt[i].dst) < 0)
            return -1;
    int64_t lim[2] = {0, 0};
    const char *lim_keys[2] = {"max_output_tokens", "context_window"};
    for (int i = 0; i < 2; i++)
        if (cfg_field_get(x, v, path, lim_keys[i], &f) && cfg_int(x, &f, 0, 100000000, &lim[i]) < 0)
            return -1;
    p->max_output_tokens = lim[0];
    p->context_window = lim[1];
    if (!p->provider[0]) { /* inferred from the configured provider serving it */
        for (int api = 0; api < 2 && !p->provider[0]; api++)
            if (cg_config_provider_for(c, (cg_api)api, p->model))
                snprintf(p->provider, sizeof p->provider, "%s", API_NAMES[api]);
    }
    return 0;
}

static int parse_pricing(cfg_ctx *x, const yaml_node_t *root, cg_config *c) {
    static const char *const keys[] = {"unknown_model", "litellm_file", "models", NULL};
    static const char *const policies[] = {"reject", "allow", NULL};
    cfg_field sec, f;
    int pol;
    if (!cfg_field_get(x, root, "", "pricing", &sec))
        return 0;
    if (cfg_check_map(x, sec.v, "pricing", keys) < 0)
        return -1;
    if (cfg_field_get(x, sec.v, "pricing", "unknown_model", &f)) {
        if (cfg_enum(x, &f, policies, &pol) < 0)
            return -1;
        c->allow_unpriced = pol;
    }
    if (opt_str(x, sec.v, "pricing", "litellm_file", c->litellm_prices_path,
                sizeof c->litellm_prices_path) < 0)
        return -1;
    if (!cfg_field_get(x, sec.v, "pricing", "models", &f))
        return 0;
    if (cfg_check_map(x, f.v, f.path, NULL) < 0)
        return -1;
    size_t n = (size_t)(f.v->data.mapping.pairs.top - f.v->data.mapping.pairs.start);
    if (n == 0)
        return 0;
    c->price_overrides = calloc(n, sizeof *c->price_overrides);
    if (!c->price_overrides)
        return cfg_fail(x, f.line, f.path, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const yaml_node_pair_t *pr = &f.v->data.mapping.pairs.start[i];
        const yaml_node_t *k = cfg_node(x, pr->key);
        char path[CFG_PATH_MAX];
        cfg_path(path, sizeof path, f.path, (const char *)k->data.scalar.value,
                 k->data.scalar.length);
        if (parse_model_price(x, k, cfg_node(x, pr->value), path, c, &c->price_overrides[i]) < 0)
            return -1;
        c->n_price_overrides++;
    }
    return 0;
}

/* ---- keys ---- */

static int parse_key(cfg_ctx *x, const yaml_node_t *n, const char *path, const cg_config *c,
                     cg_key_cfg *k) {
    static const char *const keys[] = {
        "name", "sha256", "tenant", "user", "segment", "allow_attribution", NULL};
    cfg_field f;
    if (cfg_check_map(x, n, path, keys) < 0)
        return -1;
    if (req_name(x, n, path, "name", k->name, sizeof k->name, 0) < 0)
        return -1;
    if (!cfg_field_get(x, n, path, "sha256", &f))
        return cfg_required(x, &f);
    if (cfg_hash(x, &f, k->sha256) < 0)
        return -1;
    if (c->has_admin_key && cg_ct_equal(k->sha256, c->admin_key_sha256, 32))
        return cfg_fail(x, f.line, f.path,
                        "equals admin.key_sha256 (the admin key must not be a gateway key)");
    if (req_name(x, n, path, "tenant", k->tenant, sizeof k->tenant, 0) < 0)
        return -1;
    if (cfg_field_get(x, n, path, "user", &f) &&
        (cfg_str(x, &f, k->user, sizeof k->user) < 0 || check_name(x, &f, k->user, 0, 0) < 0))
        return -1;
    snprintf(k->segment, sizeof k->segment, "default");
    if (cfg_field_get(x, n, path, "segment", &f) &&
        (cfg_str(x, &f, k->segment, sizeof k->segment) < 0 ||
         check_name(x, &f, k->segment, 0, 1) < 0))
        return -1;
    if (cfg_field_get(x, n, path, "allow_attribution", &f) &&
        cfg_bool(x, &f, &k->allow_attribution) < 0)
        return -1;
    return 0;
}

static int parse_keys(cfg_ctx *x, const yaml_node_t *root, cg_config *c) {
    cfg_field f;
    long n = req_seq(x, root, "keys", &f);
    if (n < 0)
        return -1;
    c->keys = calloc((size_t)n, sizeof *c->keys);
    if (!c->keys)
        return cfg_fail(x, f.line, f.path, "out of memory");
    for (long i = 0; i < n; i++) {
        char path[CFG_PATH_MAX];
        cfg_path_idx(path, sizeof path, "keys", (size_t)i);
        c->n_keys++;
        if (parse_key(x, cfg_node(x, f.v->data.sequence.items.start[i]), path, c, &c->keys[i]) < 0)
            return -1;
    }
    if (check_unique(x, f.v, "keys", "name", c->keys, sizeof *c->keys, offsetof(cg_key_cfg, name),
                     0) < 0)
        return -1;
    return check_unique(x, f.v, "keys", "sha256", c->keys, sizeof *c->keys,
                        offsetof(cg_key_cfg, sha256), sizeof c->keys[0].sha256);
}

/* ---- loading ---- */

static int parse_root(cfg_ctx *x, const yaml_node_t *root, cg_config *c) {
    static const char *const keys[] = {"server",          "admin",
                                       "ledger",          "pricing",
                                       "providers",       "keys",
                                       "budgets",         "slos",
                                       "slo_webhook",     "slo_eval_interval_ms",
                                       "fallback_models", "tiering",
                                       "cache",           NULL};
    if (!root || cfg_is_null(root))
        return cfg_fail(x, 1, "providers", "is required (the file is empty)");
    if (cfg_check_map(x, root, "", keys) < 0)
        return -1;
    if (parse_server(x, root, c) < 0 || parse_admin(x, root, c) < 0 ||
        parse_ledger(x, root, c) < 0 || parse_providers(x, root, c) < 0 ||
        parse_pricing(x, root, c) < 0 || parse_keys(x, root, c) < 0 ||
        cfg_parse_budgets(x, root, c) < 0 || cfg_parse_slos(x, root, c) < 0 ||
        cfg_parse_tiering(x, root, c) < 0 || cfg_parse_cache(x, root, c) < 0)
        return -1;
    if (c->workers == 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        c->workers = ncpu < 1 ? 1 : ncpu > WORKERS_MAX ? WORKERS_MAX : (int)ncpu;
    }
    return 0;
}

static void syntax_error(cfg_ctx *x, const yaml_parser_t *p, const char *src, size_t len) {
    int line = (int)p->problem_mark.line + 1;
    if (p->error == YAML_READER_ERROR) { /* reader errors carry a byte offset only */
        line = 1;
        for (size_t i = 0; i < p->problem_offset && i < len; i++)
            line += src[i] == '\n';
    }
    if (p->error == YAML_MEMORY_ERROR)
        cfg_fail(x, line, "yaml", "out of memory");
    else if (p->context)
        cfg_fail(x, line, "yaml", "%s (%s at line %d)", p->problem ? p->problem : "syntax error",
                 p->context, (int)p->context_mark.line + 1);
    else
        cfg_fail(x, line, "yaml", "%s", p->problem ? p->problem : "syntax error");
}

int cg_config_load_string(const char *name, const char *yaml, size_t len, cg_config **out,
                          char *err, size_t errlen) {
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    int have_parser = 0, have_doc = 0, rc = -1;
    cg_config *c = NULL;
    cfg_ctx x = {name ? name : "(config)", &doc, err, errlen};
    if (err && errlen)
        err[0] = '\0';
    if (!out || (!yaml && len)) {
        cfg_fail(&x, 1, "(args)", "invalid arguments");
        goto done;
    }
    *out = NULL;
    if (!yaml_parser_initialize(&parser)) {
        cfg_fail(&x, 1, "yaml", "out of memory");
        goto done;
    }
    have_parser = 1;
    yaml_parser_set_input_string(&parser, (const unsigned char *)(yaml ? yaml : ""), len);
    if (!yaml_parser_load(&parser, &doc)) {
        syntax_error(&x, &parser, yaml, len);
        goto done;
    }
    have_doc = 1;
    if (!yaml_parser_load(&parser, &extra)) {
        syntax_error(&x, &parser, yaml, len);
        goto done;
    }
    yaml_node_t *second = yaml_document_get_root_node(&extra);
    int second_line = second ? cfg_line(second) : 0;
    yaml_document_delete(&extra);
    if (second_line) {
        cfg_fail(&x, second_line, "yaml", "only one YAML document is allowed");
        goto done;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        cfg_fail(&x, 1, "(root)", "out of memory");
        goto done;
    }
    set_defaults(c);
    if (strlen(x.name) >= sizeof c->path) {
        cfg_fail(&x, 1, "(root)", "file name too long (max %zu bytes)", sizeof c->path - 1);
        goto done;
    }
    snprintf(c->path, sizeof c->path, "%s", x.name);
    if (parse_root(&x, yaml_document_get_root_node(&doc), c) < 0)
        goto done;
    *out = c;
    c = NULL;
    rc = 0;
done:
    cg_config_free(c);
    if (have_doc)
        yaml_document_delete(&doc);
    if (have_parser)
        yaml_parser_delete(&parser);
    return rc;
}

int cg_config_load(const char *path, cg_config **out, char *err, size_t errlen) {
    FILE *f = NULL;
    cg_buf b;
    char chunk[8192], eb[128];
    int rc = -1;
    cg_buf_init(&b, CFG_FILE_MAX);
    if (err && errlen)
        err[0] = '\0';
    if (out)
        *out = NULL;
    if (!path || !out) {
        snprintf(err ? err : eb, err ? errlen : sizeof eb, "(config): invalid arguments");
        goto done;
    }
    f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err ? err : eb, err ? errlen : sizeof eb, "%s: cannot open: %s", path,
                 strerror_r(e, eb, sizeof eb));
        goto done;
    }
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (cg_buf_append(&b, chunk, n) != 0) {
            snprintf(err ? err : eb, err ? errlen : sizeof eb, "%s: too large (max %u bytes)", path,
                     CFG_FILE_MAX);
            goto done;
        }
    }
    if (ferror(f)) {
        int e = errno;
        snprintf(err ? err : eb, err ? errlen : sizeof eb, "%s: cannot read: %s", path,
                 strerror_r(e, eb, sizeof eb));
        goto done;
    }
    rc = cg_config_load_string(path, b.data ? b.data : "", b.len, out, err, errlen);
done:
    if (f)
        fclose(f);
    cg_buf_free(&b);
    return rc;
}

void cg_config_free(cg_config *c) {
    if (!c)
        return;
    for (size_t i = 0; i < c->n_providers; i++) {
        for (size_t j = 0; j < c->providers[i].n_models; j++)
            free(c->providers[i].models[j]);
        free(c->providers[i].models);
    }
    free(c->providers);
    free(c->price_overrides);
    free(c->keys);
    cfg_free_budgets(&c->budgets);
    cfg_free_tiering(&c->tiering);
    cfg_free_cache(&c->cache);
    free(c->slos);
    free(c);
}

/* ---- run-time lookups ---- */

static int pattern_matches(const char *pat, const char *model) {
    size_t n = strlen(pat);
    if (n > 0 && pat[n - 1] == '*')
        return strncmp(pat, model, n - 1) == 0;
    return strcmp(pat, model) == 0;
}

const cg_provider_cfg *cg_config_provider_for(const cg_config *c, cg_api api, const char *model) {
    if (!c || !model)
        return NULL;
    for (size_t i = 0; i < c->n_providers; i++) {
        const cg_provider_cfg *p = &c->providers[i];
        if (p->api != api)
            continue;
        if (p->n_models == 0)
            return p;
        for (size_t j = 0; j < p->n_models; j++)
            if (pattern_matches(p->models[j], model))
                return p;
    }
    return NULL;
}

/* Per-thread memo of keys that matched: the same few keys arrive on every
 * request, and hashing one was ~3% of a proxied request's instructions.
 * Only matched keys are kept (an unknown key is hashed every time, so
 * guessing costs the same as before); a hit is found by comparing the whole
 * key in constant time against every slot of the same length, so timing
 * tells nothing about how much of a key matched. Slots are tied to the
 * config's generation, never to its address. */
#define KEY_MEMO_SLOTS 4
#define KEY_MEMO_MAX 128
typedef struct key_memo {
    uint64_t generation; /* 0 = empty */
    size_t len;
    size_t index;
    uint8_t key[KEY_MEMO_MAX];
} key_memo;
static _Thread_local key_memo g_key_memo[KEY_MEMO_SLOTS];
static _Thread_local unsigned g_key_memo_next;

static const cg_key_cfg *key_memo_find(const cg_config *c, const char *key, size_t keylen) {
    const cg_key_cfg *found = NULL;
    for (int i = 0; i < KEY_MEMO_SLOTS; i++) {
        const key_memo *m = &g_key_memo[i];
        if (m->generation != c->generation || m->len != keylen)
            continue;
        int eq = cg_ct_equal(m->key, (const uint8_t *)key, keylen);
        if (eq && !found && m->index < c->n_keys)
            found = &c->keys[m->index];
    }
    return found;
}

static void key_memo_put(const cg_config *c, const char *key, size_t keylen, size_t index) {
    if (keylen > KEY_MEMO_MAX)
        return;
    key_memo *m = &g_key_memo[g_key_memo_next++ % KEY_MEMO_SLOTS];
    m->generation = c->generation;
    m->len = keylen;
    m->index = index;
    memcpy(m->key, key, keylen);
}

const cg_key_cfg *cg_config_key_lookup(const cg_config *c, const char *key, size_t keylen) {
    uint8_t h[32];
    const cg_key_cfg *found = NULL;
    if (!c || !key)
        return NULL;
    if ((found = key_memo_find(c, key, keylen)) != NULL)
        return found;
    cg_sha256(key, keylen, h);
    /* Every entry is compared, in constant time, whatever matched before. */
    for (size_t i = 0; i < c->n_keys; i++) {
        int eq = cg_ct_equal(h, c->keys[i].sha256, sizeof h);
        if (eq && !found)
            found = &c->keys[i];
    }
    if (found)
        key_memo_put(c, key, keylen, (size_t)(found - c->keys));
    return found;
}
