/* test_semantic: unit tests of src/cache/semantic.c.
 *
 * Owns: eligibility (strict and same_context single-turn rules, tools,
 * non-text parts, length), the partition key (what changes it and what does
 * not), the accept decision, the adversarial partition test (10,000+ pairs
 * of identical texts and identical vectors spread over 256 partitions that
 * differ in one attribute each: tenant, share group, segment, permissions,
 * model, system prompt, tools, sampling, prompt version, context ids, API;
 * every lookup must return an entry of its own partition: 0 cross hits),
 * forgetting, reconciliation, the partition LRU bound, and snapshots
 * (round trip, another embedder's snapshot discarded, corruption refused).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/key.h"
#include "cache/semantic.h"
#include "vector/vector.h"

#define D 64

static uint64_t rs = 42;
static uint64_t rnd(void) {
    uint64_t z = (rs += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static void rvec(float *v) {
    for (int i = 0; i < D; i++)
        v[i] = (float)((double)(rnd() >> 11) / 9007199254740992.0 - 0.5);
}

static json_t *js(const char *s) {
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (!j)
        fail_msg("bad test JSON: %s: %s", s, e.text);
    return j;
}

static cg_sem_elig elig(const char *body, int anth, int same, char *text, size_t *len,
                        json_t **pb) {
    json_t *b = js(body);
    char *before = json_dumps(b, JSON_SORT_KEYS);
    cg_sem_elig e = cg_semantic_eligible(b, anth, same, text, CG_SEMANTIC_TEXT_MAX + 1, len, pb);
    char *after = json_dumps(b, JSON_SORT_KEYS);
    assert_string_equal(before, after); /* the caller's body is never changed */
    free(before);
    free(after);
    json_decref(b);
    return e;
}

static void test_eligibility(void **state) {
    (void)state;
    char text[CG_SEMANTIC_TEXT_MAX + 1];
    size_t len;
    json_t *pb = NULL;
    /* OpenAI: a user turn, with or without instructions before it */
    assert_int_equal(
        elig("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"How do I "
             "set up a VPN?\"}]}",
             0, 0, text, &len, &pb),
        CG_SEM_OK);
    assert_string_equal(text, "How do I set up a VPN?");
    assert_int_equal(len, 22);
    assert_true(json_is_null(
        json_object_get(json_array_get(json_object_get(pb, "messages"), 0), "content")));
    json_decref(pb);
    assert_int_equal(
        elig(
            "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"developer\","
            "\"content\":\"d\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
            "{\"type\":\"text\",\"text\":\"b\"}]}]}",
            0, 0, text, &len, &pb),
        CG_SEM_OK);
    assert_string_equal(text, "a\nb");
    json_decref(pb);
    /* earlier turns: strict refuses, same_context accepts */
    const char *multi =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"q1\"},{\"role\":\"assistant\","
        "\"content\":\"a1\"},{\"role\":\"user\",\"content\":\"q2\"}]}";
    assert_int_equal(elig(multi, 0, 0, text, &len, &pb), CG_SEM_NOT_SINGLE_TURN);
    assert_null(pb);
    assert_int_equal(elig(multi, 0, 1, text, &len, &pb), CG_SEM_OK);
    assert_string_equal(text, "q2");
    json_decref(pb);
    /* two user messages in a row are two turns */
    assert_int_equal(elig("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\","
                          "\"content\":\"b\"}]}",
                          0, 0, text, &len, &pb),
                     CG_SEM_NOT_SINGLE_TURN);
    /* the last message must be the user's */
    assert_int_equal(elig("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":"
                          "\"assistant\",\"content\":\"b\"}]}",
                          0, 1, text, &len, &pb),
                     CG_SEM_NOT_SINGLE_TURN);
    /* tools offered, tool turns */
    assert_int_equal(elig("{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
                          "\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}",
                          0, 0, text, &len, &pb),
                     CG_SEM_TOOLS);
    assert_int_equal(elig("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":"
                          "\"assistant\",\"tool_calls\":[]},{\"role\":\"tool\",\"content\":\"x\"},"
                          "{\"role\":\"user\",\"content\":\"b\"}]}",
                          0, 1, text, &len, &pb),
                     CG_SEM_TOOLS);
    assert_int_equal(elig("{\"tools\":[],\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}", 0,
                          0, text, &len, &pb),
                     CG_SEM_OK); /* an empty tool list offers nothing */
    json_decref(pb);
    /* not text */
    assert_int_equal(elig("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                          "\"text\":\"what is this\"},{\"type\":\"image_url\",\"image_url\":{"
                          "\"url\":\"http://x/a.png\"}}]}]}",
                          0, 0, text, &len, &pb),
                     CG_SEM_NOT_TEXT);
    assert_int_equal(
        elig("{\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}", 0, 0, text, &len, &pb),
        CG_SEM_EMPTY);
    assert_int_equal(elig("{\"messages\":[]}", 0, 0, text, &len, &pb), CG_SEM_SHAPE);
    assert_int_equal(
        elig("{\"messages\":[{\"role\":\"user\",\"content\":3}]}", 0, 0, text, &len, &pb),
        CG_SEM_NOT_TEXT);
    /* too long: more than the gate reads */
    json_t *b = js("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    char *big = malloc(CG_SEMANTIC_TEXT_MAX + 2);
    memset(big, 'a', CG_SEMANTIC_TEXT_MAX + 1);
    big[CG_SEMANTIC_TEXT_MAX + 1] = '\0';
    json_object_set_new(json_array_get(json_object_get(b, "messages"), 0), "content",
                        json_string(big));
    assert_int_equal(cg_semantic_eligible(b, 0, 0, text, sizeof text, &len, &pb), CG_SEM_TOO_LONG);
    big[CG_SEMANTIC_TEXT_MAX] = '\0';
    json_object_set_new(json_array_get(json_object_get(b, "messages"), 0), "content",
                        json_string(big));
    assert_int_equal(cg_semantic_eligible(b, 0, 0, text, sizeof text, &len, &pb), CG_SEM_OK);
    assert_int_equal(len, CG_SEMANTIC_TEXT_MAX);
    json_decref(pb);
    json_decref(b);
    free(big);
    /* Anthropic: system outside messages; one user turn; blocks */
    assert_int_equal(elig("{\"system\":\"s\",\"messages\":[{\"role\":\"user\",\"content\":[{"
                          "\"type\":\"text\",\"text\":\"hi\",\"cache_control\":{\"type\":"
                          "\"ephemeral\"}}]}]}",
                          1, 0, text, &len, &pb),
                     CG_SEM_OK);
    assert_string_equal(text, "hi");
    json_decref(pb);
    assert_int_equal(elig("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":"
                          "\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\"}]},{"
                          "\"role\":\"user\",\"content\":[{\"type\":\"tool_result\"}]}]}",
                          1, 1, text, &len, &pb),
                     CG_SEM_TOOLS);
    assert_int_equal(
        elig("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":"
             "\"assistant\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"q2\"}]}",
             1, 0, text, &len, &pb),
        CG_SEM_NOT_SINGLE_TURN);
    assert_int_equal(elig("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\"}]}]}",
                          1, 0, text, &len, &pb),
                     CG_SEM_NOT_TEXT);
    assert_string_equal(cg_sem_elig_name(CG_SEM_TOOLS), "tools");
}

/* --- partition keys -------------------------------------------------------------- */

typedef struct pspec {
    char scope[256];
    char segment[64];
    char perms[128];
    const char *api;
    char pv[64];
    char ctx[64];
    char body[1024];
} pspec;

static void partition_of(const pspec *p, const char *user_text, uint8_t out[32]) {
    char buf[2048];
    snprintf(buf, sizeof buf, p->body, user_text);
    char text[CG_SEMANTIC_TEXT_MAX + 1];
    size_t len;
    json_t *pb = NULL;
    json_t *b = js(buf);
    int anth = strcmp(p->api, "anthropic.messages") == 0;
    /* tools are not eligible: their partitions are built from the body as is */
    if (cg_semantic_eligible(b, anth, 0, text, sizeof text, &len, &pb) != CG_SEM_OK) {
        pb = json_copy(b);
        json_object_set_new(json_array_get(json_object_get(pb, "messages"),
                                           json_array_size(json_object_get(pb, "messages")) - 1),
                            "content", json_null());
    }
    cg_semantic_part_in in = {.scope = p->scope,
                              .segment = p->segment,
                              .permissions = p->perms,
                              .api = p->api,
                              .prompt_version = p->pv,
                              .context_ids = p->ctx,
                              .body = pb};
    assert_int_equal(cg_semantic_partition(&in, out), 0);
    json_decref(pb);
    json_decref(b);
}

#define BASE_BODY                                                                                  \
    "{\"model\":\"gpt-4o-mini\",\"temperature\":0.2,\"messages\":[{\"role\":\"system\","           \
    "\"content\":\"You are a helpful assistant.\"},{\"role\":\"user\",\"content\":\"%s\"}]}"

static pspec base_spec(void) {
    pspec p;
    memset(&p, 0, sizeof p);
    snprintf(p.scope, sizeof p.scope, "tenant=2:t1");
    snprintf(p.body, sizeof p.body, "%s", BASE_BODY);
    p.api = "openai.chat_completions";
    return p;
}

/* The k-th of the adversarial partitions: the base with one attribute
 * changed (dimension k % 11, value k / 11); k = 0 is the base itself. */
static pspec spec_k(int k) {
    pspec p = base_spec();
    int d = k % 11, v = k / 11;
    if (k == 0)
        return p;
    switch (d) {
    case 0:
    case 1: {
        char name[32];
        snprintf(name, sizeof name, "%c%d", d ? 'g' : 't', v + 2);
        snprintf(p.scope, sizeof p.scope, "%s=%zu:%s", d ? "group" : "tenant", strlen(name), name);
        break;
    }
    case 2:
        snprintf(p.segment, sizeof p.segment, "seg%d", v);
        break;
    case 3:
        snprintf(p.perms, sizeof p.perms, "role-%d", v);
        break;
    case 4:
        snprintf(p.body, sizeof p.body,
                 "{\"model\":\"gpt-4o-%d\",\"temperature\":0.2,\"messages\":[{\"role\":"
                 "\"system\",\"content\":\"You are a helpful assistant.\"},{\"role\":\"user\","
                 "\"content\":\"%%s\"}]}",
                 v);
        break;
    case 5:
        snprintf(p.body, sizeof p.body,
                 "{\"model\":\"gpt-4o-mini\",\"temperature\":0.2,\"messages\":[{\"role\":"
                 "\"system\",\"content\":\"You are assistant number %d.\"},{\"role\":\"user\","
                 "\"content\":\"%%s\"}]}",
                 v);
        break;
    case 6:
        snprintf(p.body, sizeof p.body,
                 "{\"model\":\"gpt-4o-mini\",\"temperature\":0.2,\"tools\":[{\"type\":"
                 "\"function\",\"function\":{\"name\":\"tool%d\"}}],\"messages\":[{\"role\":"
                 "\"system\",\"content\":\"You are a helpful assistant.\"},{\"role\":\"user\","
                 "\"content\":\"%%s\"}]}",
                 v);
        break;
    case 7:
        snprintf(p.body, sizeof p.body,
                 "{\"model\":\"gpt-4o-mini\",\"temperature\":0.%d,\"top_p\":0.9,\"messages\":[{"
                 "\"role\":\"system\",\"content\":\"You are a helpful assistant.\"},{\"role\":"
                 "\"user\",\"content\":\"%%s\"}]}",
                 v + 3);
        break;
    case 8:
        snprintf(p.pv, sizeof p.pv, "v%d", v);
        break;
    case 9:
        snprintf(p.ctx, sizeof p.ctx, "doc-%d", v);
        break;
    default:
        p.api = "anthropic.messages";
        snprintf(p.body, sizeof p.body,
                 "{\"model\":\"claude-%d\",\"max_tokens\":64,\"system\":\"You are a helpful "
                 "assistant.\",\"messages\":[{\"role\":\"user\",\"content\":\"%%s\"}]}",
                 v);
        break;
    }
    return p;
}

static void test_partition_key(void **state) {
    (void)state;
    uint8_t a[32], b[32];
    pspec p = base_spec();
    /* only the last user turn's text is left out */
    partition_of(&p, "How do I set up a VPN?", a);
    partition_of(&p, "How can I set up a VPN", b);
    assert_memory_equal(a, b, 32);
    /* never an exact-cache key of the same request */
    char buf[1024];
    snprintf(buf, sizeof buf, p.body, "How do I set up a VPN?");
    json_t *body = js(buf);
    cg_cache_key_in ek = {.scope = p.scope, .api = p.api, .body = body};
    uint8_t x[32];
    assert_int_equal(cg_cache_key(&ek, x), 0);
    assert_memory_not_equal(a, x, 32);
    json_decref(body);
    /* every attribute changes it */
    for (int k = 1; k < 23; k++) {
        pspec q = spec_k(k);
        partition_of(&q, "How do I set up a VPN?", b);
        assert_memory_not_equal(a, b, 32);
    }
    /* length prefixes: moving bytes between scope and segment is another key */
    pspec q1 = base_spec(), q2 = base_spec();
    snprintf(q1.scope, sizeof q1.scope, "tenant=2:t1");
    snprintf(q1.segment, sizeof q1.segment, "x;segment=0:");
    snprintf(q2.scope, sizeof q2.scope, "tenant=2:t1;segment=12:x");
    partition_of(&q1, "q", a);
    partition_of(&q2, "q", b);
    assert_memory_not_equal(a, b, 32);
}

static void test_accept(void **state) {
    (void)state;
    cg_gate_result g;
    const char *a = "How do I reset my password?", *b = "How can I reset my password?";
    assert_true(
        cg_semantic_decide(0.99, 0.98, a, strlen(a), b, strlen(b), CG_GATE_DEFAULT_RULES, &g));
    assert_false(
        cg_semantic_decide(0.97, 0.98, a, strlen(a), b, strlen(b), CG_GATE_DEFAULT_RULES, &g));
    assert_int_equal(g.reason, CG_GATE_PASS);
    const char *c = "How do I set up 2 VPNs?", *d = "How do I set up 3 VPNs?";
    assert_false(
        cg_semantic_decide(0.999, 0.98, c, strlen(c), d, strlen(d), CG_GATE_DEFAULT_RULES, &g));
    assert_int_equal(g.reason, CG_GATE_NUMBERS);
    assert_true(cg_semantic_decide(0.999, 0.98, c, strlen(c), d, strlen(d), 0, &g)); /* no rules */
}

/* --- the adversarial partition test ---------------------------------------------- */

#define NPARTS 256
#define NPAIRS 10240

static void xkey_of(uint8_t k[32], int part, int pair) {
    memset(k, 0, 32);
    memcpy(k, &part, sizeof part);
    memcpy(k + 8, &pair, sizeof pair);
    k[31] = 0xA5;
}

static int owner_of(const uint8_t k[32]) {
    int part;
    memcpy(&part, k, sizeof part);
    return part;
}

static void test_no_cross_partition_hits(void **state) {
    (void)state;
    char err[256];
    cg_semantic_opts o = {.dim = D, .capacity = 100000, .max_partitions = 4096, .embedder_id = "t"};
    cg_semantic *s = cg_semantic_new(&o, err, sizeof err);
    assert_non_null(s);
    static uint8_t parts[NPARTS][32];
    for (int k = 0; k < NPARTS; k++) {
        pspec p = spec_k(k);
        partition_of(&p, "ignored", parts[k]);
        for (int j = 0; j < k; j++)
            assert_memory_not_equal(parts[j], parts[k], 32);
    }
    /* every pair: the SAME text and the SAME vector in two partitions that
     * differ in one attribute (or two), each with its own entry */
    float(*vecs)[D] = malloc(sizeof(float[D]) * (NPAIRS / 8));
    for (int i = 0; i < NPAIRS / 8; i++)
        rvec(vecs[i]);
    int *pa = malloc(sizeof(int) * NPAIRS), *pbk = malloc(sizeof(int) * NPAIRS);
    char text[64];
    for (int i = 0; i < NPAIRS; i++) {
        /* neighbours in the spec order differ in one attribute from the base:
         * a pairs with its partner on the next dimension */
        pa[i] = (int)(rnd() % NPARTS);
        pbk[i] = (pa[i] + 1 + (int)(rnd() % (NPARTS - 1))) % NPARTS;
        const float *v = vecs[i % (NPAIRS / 8)]; /* 8 pairs share each vector as well */
        snprintf(text, sizeof text, "How do I set up VPN number %d?", i % (NPAIRS / 8));
        uint8_t ka[32], kb[32];
        xkey_of(ka, pa[i], i);
        xkey_of(kb, pbk[i], i);
        assert_int_equal(cg_semantic_add(s, parts[pa[i]], ka, text, strlen(text), v, D), 0);
        assert_int_equal(cg_semantic_add(s, parts[pbk[i]], kb, text, strlen(text), v, D), 0);
    }
    assert_int_equal(cg_semantic_count(s), 2 * NPAIRS);
    long cross = 0, own = 0, lookups = 0;
    cg_semantic_match *m = malloc(sizeof *m);
    for (int i = 0; i < NPAIRS; i++) {
        const float *v = vecs[i % (NPAIRS / 8)];
        snprintf(text, sizeof text, "How do I set up VPN number %d?", i % (NPAIRS / 8));
        int probe[3] = {pa[i], pbk[i], (pa[i] + pbk[i] + 1) % NPARTS};
        for (int t = 0; t < 3; t++) {
            assert_int_equal(cg_semantic_lookup(s, parts[probe[t]], v, D, text, strlen(text), 0.98,
                                                CG_GATE_DEFAULT_RULES, m),
                             0);
            lookups++;
            if (!m->found)
                continue;
            if (owner_of(m->xkey) != probe[t])
                cross++;
            else
                own++;
        }
        /* the two holders find their own copy */
        assert_int_equal(cg_semantic_lookup(s, parts[pa[i]], v, D, text, strlen(text), 0.98,
                                            CG_GATE_DEFAULT_RULES, m),
                         0);
        assert_true(m->found);
        assert_int_equal(owner_of(m->xkey), pa[i]);
    }
    /* the most adversarial case: one vector and one text everywhere */
    float one[D];
    rvec(one);
    for (int k = 0; k < NPARTS; k++) {
        uint8_t kk[32];
        xkey_of(kk, k, NPAIRS + k);
        assert_int_equal(cg_semantic_add(s, parts[k], kk, "same", 4, one, D), 0);
    }
    for (int k = 0; k < NPARTS; k++) {
        assert_int_equal(
            cg_semantic_lookup(s, parts[k], one, D, "same", 4, 0.98, CG_GATE_DEFAULT_RULES, m), 0);
        lookups++;
        assert_true(m->found);
        if (owner_of(m->xkey) != k)
            cross++;
        else
            own++;
    }
    print_message("partition test: %d pairs in %d partitions, %ld lookups, %ld own hits, %ld "
                  "cross-partition hits\n",
                  NPAIRS, NPARTS, lookups, own, cross);
    assert_int_equal(cross, 0);
    assert_true(own >= 2 * NPAIRS);
    free(m);
    free(pa);
    free(pbk);
    free(vecs);
    cg_semantic_free(s);
}

/* --- forgetting, reconciliation, bounds -------------------------------------------- */

static int live_even(void *arg, const uint8_t k[32]) {
    (void)arg;
    return k[8] % 2 == 0;
}

static void test_forget_reap_reconcile(void **state) {
    (void)state;
    char err[256];
    cg_semantic_opts o = {.dim = 0, .embedder_id = "t"}; /* dimension from the first vector */
    cg_semantic *s = cg_semantic_new(&o, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(cg_semantic_dim(s), 0);
    uint8_t part[32] = {1}, k[32];
    float v[D];
    cg_semantic_match m;
    rvec(v);
    /* nothing yet: a lookup is a miss, not an error */
    assert_int_equal(cg_semantic_lookup(s, part, v, D, "q", 1, 0.9, 0, &m), 0);
    assert_false(m.found);
    for (int i = 0; i < 10; i++) {
        xkey_of(k, 0, i);
        rvec(v);
        assert_int_equal(cg_semantic_add(s, part, k, "q", 1, v, D), 0);
    }
    assert_int_equal(cg_semantic_dim(s), D);
    assert_int_equal(cg_semantic_add(s, part, k, "q", 1, v, D + 1), CG_VE_INVAL);
    /* the key's vector is replaced, not duplicated */
    assert_int_equal(cg_semantic_add(s, part, k, "q", 1, v, D), 0);
    assert_int_equal(cg_semantic_count(s), 10);
    assert_int_equal(cg_semantic_lookup(s, part, v, D, "q", 1, 0.99, 0, &m), 0);
    assert_true(m.found);
    assert_memory_equal(m.xkey, k, 32);
    assert_string_equal(m.text, "q");
    /* forgotten: never matches again, even before the vector is deleted */
    assert_int_equal(cg_semantic_forget_key(s, k), 1);
    assert_int_equal(cg_semantic_forget_key(s, k), 0);
    assert_int_equal(cg_semantic_lookup(s, part, v, D, "q", 1, 0.99, 0, &m), 0);
    assert_false(m.found);
    assert_int_equal(m.stale, 2); /* the forgotten vector and the one it replaced */
    cg_semantic_reap(s);
    assert_int_equal(cg_semantic_lookup(s, part, v, D, "q", 1, 0.99, 0, &m), 0);
    assert_false(m.found);
    assert_int_equal(m.stale, 0);
    /* reconciliation: odd keys are gone from the exact cache */
    assert_int_equal(cg_semantic_reconcile(s, live_even, NULL), 4); /* 1,3,5,7 (9 forgotten) */
    assert_int_equal(cg_semantic_count(s), 5);
    cg_semantic_free(s);

    /* the partition's LRU bound drops the mapping with the vector */
    cg_semantic_opts o2 = {.dim = D, .capacity = 3, .embedder_id = "t"};
    s = cg_semantic_new(&o2, err, sizeof err);
    for (int i = 0; i < 5; i++) {
        xkey_of(k, 0, i);
        rvec(v);
        assert_int_equal(cg_semantic_add(s, part, k, "q", 1, v, D), 0);
    }
    assert_int_equal(cg_semantic_count(s), 3);
    cg_semantic_free(s);
}

/* --- snapshots ---------------------------------------------------------------------- */

static void test_snapshot(void **state) {
    (void)state;
    char dir[] = "/tmp/cg-test-semantic-XXXXXX", err[512];
    assert_non_null(mkdtemp(dir));
    cg_semantic_opts o = {.dim = D, .embedder_id = "builtin:test"};
    cg_semantic *s = cg_semantic_new(&o, err, sizeof err);
    static float vs[40][D];
    uint8_t part[2][32] = {{1}, {2}}, k[32];
    for (int i = 0; i < 40; i++) {
        rvec(vs[i]);
        xkey_of(k, i % 2, i);
        char t[32];
        snprintf(t, sizeof t, "query %d", i);
        assert_int_equal(cg_semantic_add(s, part[i % 2], k, t, strlen(t), vs[i], D), 0);
    }
    xkey_of(k, 0, 0);
    cg_semantic_forget_key(s, k); /* its delete is pending: the save reaps it */
    assert_int_equal(cg_semantic_save(s, dir, err, sizeof err), 0);
    assert_int_equal(cg_semantic_save(s, dir, err, sizeof err), 0); /* replaces the first */
    cg_semantic_free(s);

    cg_semantic_load_stats st;
    s = cg_semantic_new(&o, err, sizeof err);
    assert_int_equal(cg_semantic_load(s, dir, &st, err, sizeof err), 0);
    assert_true(st.found);
    assert_false(st.discarded);
    assert_int_equal(st.entries, 39);
    assert_int_equal(st.partitions, 2);
    cg_semantic_match m;
    for (int i = 0; i < 40; i++) {
        char t[32];
        snprintf(t, sizeof t, "query %d", i);
        assert_int_equal(cg_semantic_lookup(s, part[i % 2], vs[i], D, t, strlen(t), 0.99, 0, &m),
                         0);
        if (i == 0) {
            assert_false(m.found);
            continue;
        }
        assert_true(m.found);
        assert_int_equal(owner_of(m.xkey), i % 2);
        assert_string_equal(m.text, t);
    }
    /* new ids continue after the saved ones: a later add replaces nothing */
    xkey_of(k, 1, 99);
    assert_int_equal(cg_semantic_add(s, part[1], k, "new", 3, vs[0], D), 0);
    assert_int_equal(cg_semantic_count(s), 40);
    assert_int_equal(cg_semantic_load(s, dir, &st, err, sizeof err), -1); /* not empty */
    cg_semantic_free(s);

    /* another embedder's snapshot is not loaded */
    cg_semantic_opts other = {.dim = D, .embedder_id = "http:x"};
    s = cg_semantic_new(&other, err, sizeof err);
    assert_int_equal(cg_semantic_load(s, dir, &st, err, sizeof err), 0);
    assert_true(st.discarded);
    assert_int_equal(cg_semantic_count(s), 0);
    cg_semantic_free(s);

    /* a corrupt entries file is refused, never half loaded */
    char cur[64] = "", path[1024];
    snprintf(path, sizeof path, "%s/CURRENT", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(fgets(cur, sizeof cur, f));
    fclose(f);
    cur[strcspn(cur, "\n")] = '\0';
    snprintf(path, sizeof path, "%s/%s/entries.cgse", dir, cur);
    f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 40, SEEK_SET);
    fputc('Z', f);
    fclose(f);
    s = cg_semantic_new(&o, err, sizeof err);
    assert_int_equal(cg_semantic_load(s, dir, &st, err, sizeof err), -1);
    assert_non_null(strstr(err, "checksum"));
    assert_int_equal(cg_semantic_count(s), 0);
    cg_semantic_free(s);

    /* no snapshot at all: nothing to load, no error */
    char empty[] = "/tmp/cg-test-semantic-empty-XXXXXX";
    assert_non_null(mkdtemp(empty));
    s = cg_semantic_new(&o, err, sizeof err);
    assert_int_equal(cg_semantic_load(s, empty, &st, err, sizeof err), 0);
    assert_false(st.found);
    cg_semantic_free(s);
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", dir, empty);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eligibility),
        cmocka_unit_test(test_partition_key),
        cmocka_unit_test(test_accept),
        cmocka_unit_test(test_no_cross_partition_hits),
        cmocka_unit_test(test_forget_reap_reconcile),
        cmocka_unit_test(test_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
