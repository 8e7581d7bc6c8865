/* stages_route: model tiering on the request path.
 *
 * Owns three stages and their glue:
 *   tier    (before route)  classify the prompt, pick the tier and model
 *                           (rules, classifier, bandit); rewrite the model
 *   verify  (before settle) cascade: is the cheaper tier's answer confident
 *                           enough? if not, mark the attempt "escalated"
 *   retry   (after settle)  start the next attempt: the escalation's tier, or
 *                           the provider's failover on 5xx/429/connect failure
 *                           before the first byte; feed the bandit
 * Every attempt is its own ledger row (request_id, attempt). An escalation
 * that budgets refuse serves the escalated answer rather than an error.
 */
#include <stdio.h>
#include <string.h>

#include "cache/replay.h"
#include "core/log.h"
#include "core/money.h"
#include "obs/metrics.h"
#include "pipeline/engine.h"
#include "provider/provider.h"
#include "route/bandit.h"
#include "route/class_memo.h"
#include "route/classify.h"
#include "route/learned.h"
#include "route/model_splice.h"
#include "route/router.h"
#include "route/verify.h"

#define NOTE_ADD(r, ...)                                                                           \
    do {                                                                                           \
        size_t n_ = strlen((r)->note);                                                             \
        if (n_ && n_ + 1 < sizeof(r)->note)                                                        \
            (r)->note[n_++] = ' ';                                                                 \
        if (n_ < sizeof(r)->note)                                                                  \
            snprintf((r)->note + n_, sizeof(r)->note - n_, __VA_ARGS__);                           \
    } while (0)

_Static_assert(CG_INTENT_NAME_MAX <= sizeof((cg_req *)0)->intent, "an intent fits r->intent");

#define ATTEMPTS_MAX 4                /* escalations and failover together */
#define CLASSIFY_TEXT_MAX (64u << 10) /* joined text parts handed to the classifier */

static const cg_tiering_cfg *tiering(const cg_req *r) {
    return &r->gw->cfg->tiering;
}

/* src into dst[cap], cut to fit and NUL-terminated: snprintf("%s") without
 * its cost (this runs on every routed request). */
static void copy_str(char *dst, size_t cap, const char *src) {
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Appends src to the note's n bytes as far as it fits (cap with its NUL);
 * returns the new length. A byte loop: tier names and reasons are a few
 * bytes, where strnlen + memcpy (or glibc's plain-C memccpy) cost more. */
static size_t note_put(char *note, size_t n, size_t cap, const char *src) {
    while (n + 1 < cap && *src)
        note[n++] = *src++;
    return n;
}

/* Adds "tier:NAME(WHY)" to the ledger note (after a space when the note is
 * not empty), cut to fit; NOTE_ADD without snprintf. */
static void note_tier(cg_req *r, const char *name, const char *why) {
    char *d = r->note;
    size_t cap = sizeof r->note, n = d[0] ? strnlen(d, cap - 1) : 0;
    size_t ln = strlen(name), lw = strlen(why);
    if (n == 0 && ln + lw + 8 < cap) { /* the usual case: an empty note, all of it fits */
        memcpy(d, "tier:", 5);
        memcpy(d + 5, name, ln);
        d[5 + ln] = '(';
        memcpy(d + 6 + ln, why, lw);
        memcpy(d + 6 + ln + lw, ")", 2);
        return;
    }
    if (n && n + 1 < cap)
        d[n++] = ' ';
    if (n + 5 < cap) { /* the usual case: a fixed-size copy, no loop */
        memcpy(d + n, "tier:", 5);
        n += 5;
    } else {
        n = note_put(d, n, cap, "tier:");
    }
    n = note_put(d, n, cap, name);
    if (n + 1 < cap)
        d[n++] = '(';
    n = note_put(d, n, cap, why);
    if (n + 1 < cap)
        d[n++] = ')';
    d[n] = '\0';
}

/* Points the request at `model` (served by `prov`); the requested model is
 * remembered once, with its price (or the baseline tier's) as the baseline. */
static void use_model(cg_req *r, const char *model, const cg_provider_cfg *prov) {
    if (!r->requested_model[0]) {
        copy_str(r->requested_model, sizeof r->requested_model, r->model);
        const cg_tiering_cfg *t = tiering(r);
        const char *base = r->model;
        if (cg_router_is_virtual(t, r->model) && t->default_tier >= 0)
            base = t->tiers[t->default_tier].model[r->api];
        const cg_price *p = cg_prices_find(r->gw->prices, base);
        if (p) {
            cg_price_effective(p, &r->base_price);
            r->has_base_price = 1;
        }
    }
    copy_str(r->model, sizeof r->model, model);
    json_object_set_new(r->body, "model", json_string(model));
    /* while the body is otherwise as the client sent it, the new name is
     * spliced into its bytes (the tree above stays the same for later
     * stages); else, or if the splice refuses, the tree is serialised */
    if (!r->body_modified && cg_model_splice_parsed(&r->body_raw, model, strlen(model)) != 0)
        r->body_modified = 1;
    if (prov) {
        r->prov = prov;
        r->prov_key = r->gw->provider_keys[prov - r->gw->cfg->providers];
    }
}

static int next_tier_for(const cg_req *r) {
    return r->tier < 0 ? -1 : cg_router_next_tier(tiering(r), r->api, r->tier);
}

/* A held stream streams again on an attempt that is not verified. */
static void release_stream(cg_req *r) {
    if (!r->stream_held)
        return;
    r->stream_held = 0;
    r->stream = 1;
    json_object_set_new(r->body, "stream", json_true());
    if (r->stream_options)
        json_object_set(r->body, "stream_options", r->stream_options);
    r->body_modified = 1;
}

/* cascade.stream: buffer: the attempt is fetched whole (not streamed), so it
 * can be verified before the client sees a byte; it is replayed as SSE. */
static void hold_stream(cg_req *r) {
    if (!r->stream)
        return;
    if (!r->stream_options) {
        json_t *so = json_object_get(r->body, "stream_options");
        r->stream_options = so ? json_incref(so) : NULL;
    }
    json_object_set_new(r->body, "stream", json_false());
    json_object_del(r->body, "stream_options");
    r->body_modified = 1;
    r->stream = 0;
    r->stream_held = 1;
}

/* The cascade verifies this attempt when a dearer tier exists; streams only
 * with cascade.stream: buffer (the attempt is then fetched whole and, if it
 * is kept, replayed to the client as SSE). */
static void arm_cascade(cg_req *r) {
    const cg_tiering_cfg *t = tiering(r);
    r->cascade_armed = 0;
    int streaming = r->stream || r->stream_held;
    if (!t->cascade || !r->routed || (streaming && !t->cascade_stream) || next_tier_for(r) < 0) {
        release_stream(r);
        return;
    }
    r->cascade_armed = 1;
    if (streaming)
        hold_stream(r);
    if (r->api == CG_API_OPENAI && r->ep == CG_EP_CHAT && t->request_logprobs &&
        !json_is_true(json_object_get(r->body, "logprobs"))) {
        json_object_set_new(r->body, "logprobs", json_true());
        r->body_modified = 1;
        r->added_logprobs = 1;
    }
}

/* Appends the text of a message content (a string, or text parts/blocks). */
static void append_text(cg_buf *b, const json_t *content) {
    if (json_is_string(content)) {
        cg_buf_append(b, json_string_value(content), json_string_length(content));
        return;
    }
    size_t i;
    const json_t *part;
    json_array_foreach(content, i, part) {
        const json_t *t = json_object_get(part, "text");
        if (json_is_string(t)) {
            if (b->len)
                cg_buf_append(b, "\n", 1);
            cg_buf_append(b, json_string_value(t), json_string_length(t));
        }
    }
}

/* Appends bytes [from, to) of the text that append_text would build from the
 * parts of `content` (starting from an empty buffer). */
static void append_range(cg_buf *b, const json_t *content, size_t from, size_t to) {
    size_t i, at = 0;
    const json_t *part;
    json_array_foreach(content, i, part) {
        const json_t *t = json_object_get(part, "text");
        if (!json_is_string(t))
            continue;
        const char *s = json_string_value(t);
        size_t n = json_string_length(t);
        for (int piece = at ? 0 : 1; piece < 2; piece++) { /* "\n" between, then the text */
            const char *ps = piece ? s : "\n";
            size_t pn = piece ? n : 1;
            size_t lo = from > at ? from - at : 0, hi = to - at < pn ? to - at : pn;
            if (at < to && lo < hi)
                cg_buf_append(b, ps + lo, hi - lo);
            at += pn;
        }
    }
}

/* The last user message's text for the classifier. A string content is
 * used where it is (no copy: the classifier caps what it reads itself);
 * text parts are joined with "\n" into b, and when the joined text is longer
 * than b's cap only its first and last halves are kept (the classifier
 * reads the head and the tail of a long prompt), with the whole length in
 * in->user_full_len. */
static void user_text(cg_buf *b, const json_t *content, cg_class_input *in) {
    if (json_is_string(content)) {
        in->user = json_string_value(content);
        in->user_len = json_string_length(content);
        return;
    }
    size_t i, total = 0;
    const json_t *part;
    json_array_foreach(content, i, part) {
        const json_t *t = json_object_get(part, "text");
        if (json_is_string(t))
            total += (total ? 1 : 0) + json_string_length(t);
    }
    if (total <= b->max) {
        append_text(b, content);
    } else {
        size_t head = b->max / 2;
        append_range(b, content, 0, head);
        append_range(b, content, total - (b->max - head), total);
        in->user_full_len = total;
    }
    in->user = b->data ? b->data : "";
    in->user_len = b->len;
}

/* A message's "role" (NULL unless a string) and "content" in one walk over
 * its members: cheaper than two lookups by hash on every routed request.
 * Keys are told apart by length and a fixed-size compare (no strcmp call;
 * a key with a NUL inside is not "role", as for json_object_get). */
static void message_fields(const json_t *m, const char **role, const json_t **content) {
    *role = NULL;
    *content = NULL;
    int seen = 0;
    for (void *it = json_object_iter((json_t *)m); it && seen < 2;
         it = json_object_iter_next((json_t *)m, it)) {
        size_t kl = json_object_iter_key_len(it);
        if (kl == 4 && memcmp(json_object_iter_key(it), "role", 4) == 0) {
            *role = json_string_value(json_object_iter_value(it));
            seen++;
        } else if (kl == 7 && memcmp(json_object_iter_key(it), "content", 7) == 0) {
            *content = json_object_iter_value(it);
            seen++;
        }
    }
}

/* obj's member `key` (klen bytes, no NUL inside). The first few members
 * are looked at in order (request bodies start with "messages" or "model"
 * then "messages"), which is cheaper than hashing the key; else by hash. */
static const json_t *member(const json_t *obj, const char *key, size_t klen) {
    int k = 0;
    for (void *it = json_object_iter((json_t *)obj); it && k < 3;
         it = json_object_iter_next((json_t *)obj, it), k++)
        if (json_object_iter_key_len(it) == klen &&
            memcmp(json_object_iter_key(it), key, klen) == 0)
            return json_object_iter_value(it);
    return k < 3 ? NULL : json_object_get(obj, key);
}

/* The roles the classifier tells apart, by bytes (strcmp without a call). */
enum { ROLE_OTHER, ROLE_USER, ROLE_SYSTEM };
static int role_kind(const char *s) {
    if (s[0] == 'u' && s[1] == 's' && s[2] == 'e' && s[3] == 'r' && !s[4])
        return ROLE_USER;
    if ((s[0] == 's' && strcmp(s, "system") == 0) || (s[0] == 'd' && strcmp(s, "developer") == 0))
        return ROLE_SYSTEM;
    return ROLE_OTHER;
}

/* Everything the tier stage's classification of one request needs: the
 * classifier's view of the request (its texts may point into user and sys),
 * the memo key and the verdict, and the classifier's state between its
 * scan and the tier (route/classify.h: the tier is computed only when the
 * router asks for it). */
typedef struct tier_ctx {
    cg_req *r;
    cg_buf user, sys;
    cg_class_input in;
    cg_class_memo_key key;
    uint64_t hash;
    cg_class_memo_val v;
    int scanned; /* st holds the scan of in */
    int changed; /* v is not in the memo yet */
    cg_class_state st;
} tier_ctx;

/* The classifier's view of the request: the last user message, the system
 * text (OpenAI system/developer messages, Anthropic `system`; one string is
 * used where it is, several are joined), the turn count; and its memo key. */
static void class_input(tier_ctx *x) {
    cg_req *r = x->r;
    const json_t *msgs = member(r->body, "messages", 8);
    const json_t *last_user = NULL; /* the last user message's content */
    const json_t *sys_one = NULL;   /* the only system text so far */
    int n_sys = 0;
    size_t n_msgs = json_array_size(msgs);
    for (size_t i = 0; i < n_msgs; i++) {
        const char *role;
        const json_t *c;
        message_fields(json_array_get(msgs, i), &role, &c);
        int kind = role ? role_kind(role) : ROLE_OTHER;
        if (kind == ROLE_USER) {
            last_user = c;
        } else if (kind == ROLE_SYSTEM) {
            if (n_sys++ == 0 && json_is_string(c)) {
                sys_one = c;
                continue;
            }
            if (sys_one) { /* a second one: join from here on */
                append_text(&x->sys, sys_one);
                sys_one = NULL;
            }
            append_text(&x->sys, c);
        }
    }
    if (r->api == CG_API_ANTHROPIC) {
        const json_t *c = json_object_get(r->body, "system");
        if (c && n_sys++ == 0 && json_is_string(c)) {
            sys_one = c;
        } else if (c) {
            if (sys_one) {
                append_text(&x->sys, sys_one);
                sys_one = NULL;
            }
            append_text(&x->sys, c);
        }
    }
    cg_class_input *in = &x->in;
    *in = (cg_class_input){
        .user = "",
        .header_intent = r->intent[0] ? r->intent : NULL,
        .max_output_tokens = r->max_tokens > 0 ? r->max_tokens : 0,
        .turns = (int)n_msgs,
    };
    if (sys_one) {
        in->system = json_string_value(sys_one);
        in->system_len = json_string_length(sys_one);
    } else if (x->sys.len) {
        in->system = x->sys.data;
        in->system_len = x->sys.len;
    }
    if (in->system_len == 0)
        in->system = NULL;
    if (last_user)
        user_text(&x->user, last_user, in);
    x->key = (cg_class_memo_key){
        .owner = cg_classifier_serial(r->gw->classifier),
        .learned = r->gw->learned,
        .user = in->user,
        .user_len = in->user_len,
        .user_full_len = in->user_full_len,
        .system = in->system,
        .system_len = in->system_len,
        .header_intent = in->header_intent,
        .max_output_tokens = in->max_output_tokens,
        .turns = in->turns,
    };
}

/* The classifier's scan and intent of x->in into x->st and x->v (tier not
 * yet known). */
static void scan_now(tier_ctx *x) {
    x->v.tier = CG_TIER_NONE;
    x->v.p_strong = -1;
    x->changed = 1;
    x->scanned = cg_classify_begin(x->r->gw->classifier, &x->in, &x->st, x->v.intent) == 0;
    if (!x->scanned) /* (only on NULL arguments) as an empty verdict: no intent, small */
        memset(x->v.intent, 0, sizeof x->v.intent);
}

/* cg_route_in.classify: the decision needs the classifier's tier (and the
 * learned router's P(strong), when there is one): computed from this
 * request's scan, or after one when the memo's verdict had only the intent
 * (an earlier request with the same prompt was decided by it alone). */
static void classify_late(void *arg, int *complexity, const char **suggested, double *p_strong) {
    tier_ctx *x = arg;
    const cg_gateway *gw = x->r->gw;
    if (!x->scanned)
        scan_now(x);
    float feat[CG_CLASS_NFEAT] = {0};
    if (!x->scanned || cg_classify_finish(gw->classifier, &x->in, &x->st, &x->v.tier,
                                          gw->learned ? feat : NULL) != 0)
        x->v.tier = CG_TIER_SMALL;
    if (gw->learned) {
        cg_learned_input li = {.text = x->in.user, .len = x->in.user_len, .hand = feat};
        x->v.p_strong = cg_learned_predict(gw->learned, &li);
    }
    x->changed = 1;
    *p_strong = x->v.p_strong;
    *suggested = cg_tier_name(x->v.tier);
    *complexity = x->v.tier <= CG_TIER_SMALL ? 0 : x->v.tier == CG_TIER_MEDIUM ? 1 : 2;
}

/* The router's view of the request. */
static cg_route_in route_in(const cg_req *r) {
    return (cg_route_in){
        .api = r->api,
        .model = r->model,
        .key_name = r->key ? r->key->name : NULL,
        .intent = r->intent,
        .segment = r->segment,
        .feature = r->feature,
        .complexity = -1,
        .p_strong = -1,
    };
}

/* Classifies the request as far as its decision needs (from this thread's
 * memo when the same inputs were classified lately: route/class_memo.h,
 * exact, the text is compared), fills in its intent and decides. */
static int decide_classified(tier_ctx *x, cg_route_out *out) {
    cg_req *r = x->r;
    class_input(x);
    if (!cg_class_memo_get(&x->key, &x->hash, &x->v))
        scan_now(x);
    if (!r->intent[0] && x->v.intent[0]) /* NUL-padded, shorter than r->intent */
        memcpy(r->intent, x->v.intent, sizeof x->v.intent);
    cg_route_in in = route_in(r);
    if (x->v.tier != CG_TIER_NONE) {
        in.p_strong = x->v.p_strong;
        in.suggested_tier = cg_tier_name(x->v.tier);
        in.complexity = x->v.tier <= CG_TIER_SMALL ? 0 : x->v.tier == CG_TIER_MEDIUM ? 1 : 2;
    } else {
        in.classify = classify_late;
        in.classify_arg = x;
    }
    int rc = cg_router_decide(tiering(r), r->gw->bandit, &in, out);
    if (x->changed)
        cg_class_memo_put(&x->key, x->hash, &x->v);
    return rc;
}

/* Decides the tier and model of the request; 0, or -1 when it asks for a
 * virtual model no tier serves (out->why says so). */
static int decide(cg_req *r, cg_route_out *out) {
    if (!r->gw->classifier) {
        cg_route_in in = route_in(r);
        return cg_router_decide(tiering(r), r->gw->bandit, &in, out);
    }
    tier_ctx x;
    x.r = r;
    x.scanned = x.changed = 0;
    cg_buf_init(&x.user, CLASSIFY_TEXT_MAX);
    cg_buf_init(&x.sys, CLASSIFY_TEXT_MAX);
    int rc = decide_classified(&x, out);
    if (x.user.data)
        cg_buf_free(&x.user);
    if (x.sys.data)
        cg_buf_free(&x.sys);
    return rc;
}

cg_stage_rc cg_stage_tier(cg_req *r) {
    const cg_tiering_cfg *t = tiering(r);
    if (!t->enabled || r->ep == CG_EP_EMBEDDINGS)
        return CG_NEXT;
    cg_route_out out;
    if (decide(r, &out) != 0) {
        cg_req_fail(r, 400, "invalid_request_error", "model_not_found", "model",
                    "The model '%s' is routed by costgate, but %s.", r->model, out.why);
        return CG_ERROR;
    }
    r->tier = out.tier;
    r->routed = out.routed;
    if (!out.routed)
        return CG_NEXT;
    if (strcmp(out.model, r->model) != 0)
        use_model(r, out.model, NULL); /* the route stage finds its provider */
    note_tier(r, t->tiers[r->tier].name, out.why);
    arm_cascade(r);
    return CG_NEXT;
}

cg_stage_rc cg_stage_verify(cg_req *r) {
    r->escalate_to = -1;
    if (!r->cascade_armed || r->client_gone || r->up_sse || r->up_res != CG_UP_OK ||
        r->up_status < 200 || r->up_status >= 300 || !r->up_resp.len)
        return CG_NEXT;
    json_t *resp = json_loadb(r->up_resp.data, r->up_resp.len, 0, NULL);
    if (!resp)
        return CG_NEXT; /* settle flags what it cannot read */
    cg_verdict v;
    cg_verify_answer(tiering(r), r->api, resp, cg_verify_wants_json(r->api, r->body), &v);
    if (v.escalate) {
        r->escalate_to = next_tier_for(r);
        snprintf(r->status, sizeof r->status, "escalated");
        NOTE_ADD(r, "escalate:%s", v.why);
        cg_metrics_budget_action(r->gw->metrics, "cascade", "escalate");
    } else if (r->added_logprobs) {
        /* the client did not ask for logprobs: give back what it would have got */
        cg_verify_strip_logprobs(resp);
        char *s = json_dumps(resp, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s) {
            cg_buf_reset(&r->up_resp);
            cg_buf_append(&r->up_resp, s, strlen(s));
            free(s);
        }
    }
    json_decref(resp);
    return CG_NEXT;
}

/* What the bandit learns from this attempt. */
static void feed_bandit(cg_req *r, double good, int final) {
    if (!r->gw->bandit || !r->routed || r->tier < 0)
        return;
    cg_bandit_record(r->gw->bandit, r->id, r->intent, r->tier, good, r->cost.total, final);
}

static int upstream_failed(const cg_req *r) {
    return r->up_status == 429 || r->up_status >= 500 ||
           (r->up_status == 0 && r->up_res == CG_UP_CONNECT_FAILED);
}

cg_stage_rc cg_stage_retry(cg_req *r) {
    const cg_tiering_cfg *t = tiering(r);
    if (r->client_gone || r->reply_started) {
        feed_bandit(r, upstream_failed(r) ? 0 : t->implicit_reward, 1);
        return CG_NEXT;
    }
    /* failover: the same model on the provider's failover, before any byte went out */
    if (upstream_failed(r) && r->prov && r->prov->failover >= 0 && !r->failed_over &&
        r->attempt < ATTEMPTS_MAX) {
        const cg_provider_cfg *to = &r->gw->cfg->providers[r->prov->failover];
        feed_bandit(r, 0, 0);
        CG_INFO("request %s: %s answered %ld (%s); failing over to %s", r->id, r->prov->name,
                r->up_status, r->up_detail, to->name);
        cg_req_next_attempt(r);
        r->failed_over = 1;
        r->prov = to;
        r->prov_key = r->gw->provider_keys[to - r->gw->cfg->providers];
        NOTE_ADD(r, "failover:%s", to->name);
        cg_metrics_budget_action(r->gw->metrics, "failover", to->name);
        cg_engine_goto(r, "admit");
        return CG_NEXT;
    }
    if (r->escalate_to >= 0 && r->attempt < ATTEMPTS_MAX) {
        int to = r->escalate_to;
        feed_bandit(r, 0, 0);
        /* kept in case budgets refuse the next attempt */
        cg_buf_reset(&r->prev_resp);
        cg_buf_append(&r->prev_resp, r->up_resp.data, r->up_resp.len);
        r->prev_cost = r->cost;
        snprintf(r->prev_model, sizeof r->prev_model, "%s",
                 r->served_model[0] ? r->served_model : r->model);
        const char *model = t->tiers[to].model[r->api];
        const cg_provider_cfg *prov = cg_config_provider_for(r->gw->cfg, r->api, model);
        if (!prov) {
            feed_bandit(r, t->implicit_reward, 1);
            return CG_NEXT; /* config validation makes this unreachable */
        }
        cg_req_next_attempt(r);
        r->tier = to;
        use_model(r, model, prov);
        if (r->added_logprobs) { /* the last attempt answers as the client asked */
            json_object_del(r->body, "logprobs");
            r->added_logprobs = 0;
        }
        arm_cascade(r);
        NOTE_ADD(r, "attempt%d:%s", r->attempt, t->tiers[to].name);
        cg_engine_goto(r, "admit");
        return CG_NEXT;
    }
    int ok = r->up_status >= 200 && r->up_status < 300 && r->up_res == CG_UP_OK;
    feed_bandit(r, ok ? t->implicit_reward : 0, 1);
    return CG_NEXT;
}

int cg_route_keep_previous(cg_req *r) {
    if (r->attempt < 2 || !r->prev_resp.len)
        return -1;
    cg_buf_reset(&r->up_resp);
    if (cg_buf_append(&r->up_resp, r->prev_resp.data, r->prev_resp.len) != 0)
        return -1;
    r->up_status = 200;
    r->up_res = CG_UP_OK;
    r->up_sse = 0;
    if (r->stream) { /* the client asked for a stream: the kept answer is replayed */
        r->stream = 0;
        r->stream_held = 1;
    }
    r->cost = r->prev_cost;
    snprintf(r->served_model, sizeof r->served_model, "%s", r->prev_model);
    NOTE_ADD(r, "escalation_refused_by_budget");
    cg_engine_goto(r, "respond");
    return 0;
}

int cg_route_held_sse(cg_req *r, cg_buf *out) {
    int anth = r->api == CG_API_ANTHROPIC;
    char usd[40];
    cg_money_fmt(r->cost.total, usd, sizeof usd);
    if (cg_replay_sse(anth, r->up_resp.data, r->up_resp.len, r->client_usage, out) != 0 ||
        cg_buf_printf(out, ": x-costgate-cost-usd=%s%s request_id=%s\n\n", usd,
                      r->estimated ? " estimated=true" : "", r->id) != 0 ||
        cg_buf_puts(out, cg_replay_terminal(anth)) != 0)
        return -1;
    return 0;
}
