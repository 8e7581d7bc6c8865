/* admin_cache: cache invalidation, stats, metrics and the feedback hook
 * (see admin_cache.h). */
#include "http/admin_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/coalesce.h"
#include "cache/exact.h"
#include "core/hash.h"
#include "core/money.h"
#include "pipeline/stages_semantic.h"

#define TAGS_MAX 256

static json_t *usd(int64_t nano) {
    char b[40];
    return json_string(cg_money_fmt(nano, b, sizeof b));
}

json_t *cg_admin_cache_stats_json(cg_gateway *gw) {
    if (!gw->cache)
        return json_pack("{s:b}", "enabled", 0);
    cg_cache_stats s;
    cg_cache_stats_get(gw->cache, &s);
    json_t *rej = json_object(), *inv = json_object();
    for (int i = 1; i < CG_GUARD_N; i++)
        json_object_set_new(rej, cg_guard_reason_name((cg_guard_reason)i),
                            json_integer((json_int_t)s.rejects[i]));
    for (int i = 0; i < CG_INV_N; i++)
        json_object_set_new(inv, cg_inv_cause_name((cg_inv_cause)i),
                            json_integer((json_int_t)s.invalidated[i]));
    uint64_t served = s.hits + s.misses;
    json_t *j = json_pack(
        "{s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:I,s:I,s:I,s:I,s:o,s:o,s:{s:I,s:I,s:I,s:I},"
        "s:I,s:o}",
        "enabled", 1, "entries", (json_int_t)s.entries, "bytes", (json_int_t)s.bytes, "max_bytes",
        (json_int_t)s.max_bytes, "lookups", (json_int_t)s.lookups, "hits", (json_int_t)s.hits,
        "misses", (json_int_t)s.misses, "coalesced", (json_int_t)s.coalesced, "bypassed",
        (json_int_t)s.bypassed, "hit_rate",
        json_real(served ? (double)s.hits / (double)served : 0.0), "stores", (json_int_t)s.stores,
        "replaced", (json_int_t)s.replaced, "evictions", (json_int_t)s.evictions, "expirations",
        (json_int_t)s.expirations, "rejected", rej, "invalidated", inv, "coalescing", "waits",
        (json_int_t)s.coalesce_waits, "timeouts", (json_int_t)s.coalesce_timeouts, "leader_failed",
        (json_int_t)s.coalesce_leader_failed, "in_flight",
        (json_int_t)(gw->coalesce ? cg_coalesce_inflight(gw->coalesce) : 0), "saved_nano",
        (json_int_t)s.saved_nano, "saved_usd", usd(s.saved_nano));
    if (j) /* the semantic cache's counters (stages_semantic.h) */
        json_object_set_new(j, "semantic", cg_semrt_stats_json(gw));
    return j;
}

static void reply_json(cg_hreq *req, int status, json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (s)
        cg_server_reply_json(req, status, s, strlen(s));
    else
        cg_server_reply_error(req, CG_API_OPENAI, 500, "api_error", NULL, "out of memory");
    free(s);
}

static int opt_str(json_t *b, const char *k, const char **out, char *err, size_t errlen) {
    json_t *v = json_object_get(b, k);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 255) {
        snprintf(err, errlen, "Field '%s' must be a non-empty string of at most 255 bytes.", k);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static void invalidate(cg_gateway *gw, cg_hreq *req) {
    char err[256] = "";
    json_t *b = NULL;
    const char *tags[TAGS_MAX];
    cg_cache_filter f = {0};
    uint8_t key[32];
    const char *key_hex = NULL;
    if (!gw->cache) {
        snprintf(err, sizeof err,
                 "The exact cache is not enabled: add a cache section to the config.");
        goto bad;
    }
    size_t len;
    const char *body = cg_hreq_body(req, &len);
    b = len && len <= (1u << 20) ? json_loadb(body, len, 0, NULL) : NULL;
    if (!json_is_object(b)) {
        snprintf(err, sizeof err,
                 "The body must be a JSON object with key, tags, tenant, share_group, "
                 "prompt_version or all.");
        goto bad;
    }
    static const char *const known[] = {"key", "tags", "tenant", "share_group", "prompt_version",
                                        "all", NULL};
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v) {
        int ok = 0;
        for (int i = 0; known[i]; i++)
            ok |= strcmp(k, known[i]) == 0;
        if (!ok) {
            snprintf(err, sizeof err,
                     "Unknown field '%.64s' (key, tags, tenant, share_group, prompt_version, all).",
                     k);
            goto bad;
        }
    }
    if (opt_str(b, "key", &key_hex, err, sizeof err) ||
        opt_str(b, "tenant", &f.tenant, err, sizeof err) ||
        opt_str(b, "share_group", &f.share_group, err, sizeof err) ||
        opt_str(b, "prompt_version", &f.prompt_version, err, sizeof err))
        goto bad;
    if (key_hex) {
        if (strlen(key_hex) != 64 || cg_unhex(key_hex, key, 32) != 0) {
            snprintf(err, sizeof err, "Field 'key' must be a cache key: 64 hex characters.");
            goto bad;
        }
        f.key = key;
    }
    json_t *ta = json_object_get(b, "tags");
    if (ta && !json_is_null(ta)) {
        if (!json_is_array(ta) || json_array_size(ta) == 0 || json_array_size(ta) > TAGS_MAX) {
            snprintf(err, sizeof err, "Field 'tags' must be an array of 1 to %d strings.",
                     TAGS_MAX);
            goto bad;
        }
        size_t i;
        json_array_foreach(ta, i, v) {
            if (!json_is_string(v) || json_string_length(v) == 0) {
                snprintf(err, sizeof err, "tags[%zu] must be a non-empty string.", i);
                goto bad;
            }
            tags[f.n_tags++] = json_string_value(v);
        }
        f.tags = tags;
    }
    json_t *all = json_object_get(b, "all");
    if (all && !json_is_boolean(all)) {
        snprintf(err, sizeof err, "Field 'all' must be true or false.");
        goto bad;
    }
    f.all = json_is_true(all);
    int criteria = f.key || f.n_tags || f.tenant || f.share_group || f.prompt_version;
    if (!criteria && !f.all) {
        snprintf(err, sizeof err,
                 "Say what to remove: key, tags, tenant, share_group, prompt_version, or "
                 "\"all\": true.");
        goto bad;
    }
    if (criteria && f.all) {
        snprintf(err, sizeof err, "\"all\" cannot be combined with other criteria.");
        goto bad;
    }
    cg_inv_cause cause = f.key              ? CG_INV_KEY
                         : f.n_tags         ? CG_INV_TAG
                         : f.prompt_version ? CG_INV_PROMPT_VERSION
                         : f.all            ? CG_INV_ALL
                                            : CG_INV_TENANT;
    char *detail = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
    size_t n = cg_cache_invalidate(gw->cache, &f, cause, detail ? detail : "");
    free(detail);
    json_decref(b);
    reply_json(req, 200,
               json_pack("{s:I,s:s}", "removed", (json_int_t)n, "cause", cg_inv_cause_name(cause)));
    return;
bad:
    json_decref(b);
    cg_server_reply_error(req, CG_API_OPENAI, 400, "invalid_request_error", "invalid_value", err);
}

int cg_admin_cache_handle(cg_worker *w, cg_gateway *gw, cg_hreq *req, const char *uri,
                          cg_hmethod m) {
    (void)w;
    if (cg_path_is(uri, "/admin/cache/invalidate") && m == CG_HM_POST) {
        invalidate(gw, req);
        return 1;
    }
    if (cg_path_is(uri, "/admin/cache/stats") && m == CG_HM_GET) {
        reply_json(req, 200, cg_admin_cache_stats_json(gw));
        return 1;
    }
    return 0;
}

void cg_admin_cache_metrics(cg_gateway *gw, cg_buf *out) {
    if (!gw->cache)
        return;
    cg_cache_stats s;
    cg_cache_stats_get(gw->cache, &s);
    cg_buf_printf(out,
                  "# HELP costgate_cache_lookups_total Exact cache outcomes.\n"
                  "# TYPE costgate_cache_lookups_total counter\n"
                  "costgate_cache_lookups_total{result=\"hit\"} %llu\n"
                  "costgate_cache_lookups_total{result=\"miss\"} %llu\n"
                  "costgate_cache_lookups_total{result=\"coalesced\"} %llu\n"
                  "costgate_cache_lookups_total{result=\"bypass\"} %llu\n"
                  "# HELP costgate_cache_entries Entries in the exact cache.\n"
                  "# TYPE costgate_cache_entries gauge\n"
                  "costgate_cache_entries %llu\n"
                  "# HELP costgate_cache_bytes Bytes held by the exact cache.\n"
                  "# TYPE costgate_cache_bytes gauge\n"
                  "costgate_cache_bytes %llu\n"
                  "# HELP costgate_cache_saved_nano_usd_total What cache hits would have cost.\n"
                  "# TYPE costgate_cache_saved_nano_usd_total counter\n"
                  "costgate_cache_saved_nano_usd_total %lld\n"
                  "# HELP costgate_cache_evictions_total Entries evicted (LRU) or expired.\n"
                  "# TYPE costgate_cache_evictions_total counter\n"
                  "costgate_cache_evictions_total{why=\"lru\"} %llu\n"
                  "costgate_cache_evictions_total{why=\"expired\"} %llu\n"
                  "# HELP costgate_cache_rejected_total Answers the write guard did not store.\n"
                  "# TYPE costgate_cache_rejected_total counter\n",
                  (unsigned long long)s.hits, (unsigned long long)s.misses,
                  (unsigned long long)s.coalesced, (unsigned long long)s.bypassed,
                  (unsigned long long)s.entries, (unsigned long long)s.bytes,
                  (long long)s.saved_nano, (unsigned long long)s.evictions,
                  (unsigned long long)s.expirations);
    for (int i = 1; i < CG_GUARD_N; i++)
        cg_buf_printf(out, "costgate_cache_rejected_total{reason=\"%s\"} %llu\n",
                      cg_guard_reason_name((cg_guard_reason)i), (unsigned long long)s.rejects[i]);
    cg_buf_puts(out, "# HELP costgate_cache_invalidated_total Entries removed by cause.\n"
                     "# TYPE costgate_cache_invalidated_total counter\n");
    for (int i = 0; i < CG_INV_N; i++)
        cg_buf_printf(out, "costgate_cache_invalidated_total{cause=\"%s\"} %llu\n",
                      cg_inv_cause_name((cg_inv_cause)i), (unsigned long long)s.invalidated[i]);
}

void cg_admin_cache_feedback_hook(void *arg, const cg_feedback *fb, json_t *reply) {
    cg_gateway *gw = arg;
    uint8_t key[32];
    if (!gw->cache || fb->rating >= 0 || strlen(fb->cache_key) != 64 ||
        cg_unhex(fb->cache_key, key, 32) != 0)
        return;
    /* the entry that served this request (a hit), or that it wrote (a miss):
     * an entry written since by another request is not the one rated */
    cg_cache_filter f = {
        .key = key,
        .writer_id = strcmp(fb->cache, "exact") == 0 ? fb->cache_src : fb->request_id,
    };
    size_t n = cg_cache_invalidate(gw->cache, &f, CG_INV_FEEDBACK, fb->request_id);
    json_object_set_new(reply, "cache_removed", json_integer((json_int_t)n));
}
