/* fuzz_cache: libFuzzer target for the exact cache's parsers of provider
 * output (src/cache/policy.c's guard reader, src/cache/replay.c) and of
 * request headers (src/cache/key.c's context ids).
 *
 * Owns: feeding arbitrary bytes (1) to the write guard as a complete
 * response body of each API, with and without stored tool calls and with a
 * deny pattern; (2) to the SSE parser, capturing every event, and rebuilding
 * the complete body of each API from the capture; (3) as a context-ids
 * header. Invariants (abort() on violation):
 *  - the guard only ever accepts JSON that jansson parses too (apart from
 *    numbers too large for jansson's integers and reals): nothing it lets
 *    into the cache can fail to replay;
 *  - a body that passes the guard replays as SSE; a rebuilt body is valid
 *    JSON and replays too, and its replay parses as SSE events whose data
 *    are JSON (but the terminal "[DONE]");
 *  - canonical context ids are sorted, distinct, and canonical again.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/key.h"
#include "cache/policy.h"
#include "cache/replay.h"
#include "http/sse.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_cache: invariant failed: %s (line %d)\n", #c, __LINE__);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static cg_cache_cfg cfg;
static cg_cache_guard guard;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    static char *deny[] = {"as an ai"};
    cfg.guard_max_bytes = 1 << 20;
    cfg.deny = deny;
    cfg.n_deny = 1;
    char err[128];
    if (cg_cache_guard_init(&guard, &cfg, err, sizeof err) != 0)
        abort();
    return 0;
}

static int sse_data_ok(void *arg, const cg_sse_event *ev) {
    (void)arg;
    if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0)
        return 0;
    json_t *j = json_loadb(ev->data, ev->data_len, 0, NULL);
    CHECK(j != NULL);
    json_decref(j);
    return 0;
}

static void replay_parses(int anthropic, const char *body, size_t len) {
    cg_buf sse;
    cg_buf_init(&sse, 64u << 20);
    CHECK(cg_replay_sse(anthropic, body, len, 1, &sse) == 0);
    cg_sse p;
    cg_sse_init(&p, 64u << 20);
    CHECK(cg_sse_feed(&p, sse.data ? sse.data : "", sse.len, sse_data_ok, NULL) == 0);
    cg_sse_free(&p);
    cg_buf_free(&sse);
}

static void guard_vs_jansson(const uint8_t *data, size_t size) {
    for (int anthropic = 0; anthropic <= 1; anthropic++) {
        for (int tools = 0; tools <= 1; tools++) {
            cfg.store_tool_calls = tools;
            cg_guard_reason r = cg_cache_guard_check(&guard, anthropic, (const char *)data, size);
            if (r == CG_GUARD_INVALID || r == CG_GUARD_TOO_LARGE)
                continue;
            json_error_t je;
            json_t *j = json_loadb((const char *)data, size, 0, &je);
            if (!j) { /* jansson's own limits on numbers are not JSON's */
                CHECK(strstr(je.text, "too big") || strstr(je.text, "overflow") ||
                      strstr(je.text, "depth"));
                continue;
            }
            CHECK(json_is_object(j));
            json_decref(j);
            if (r == CG_GUARD_OK)
                replay_parses(anthropic, (const char *)data, size);
        }
    }
}

static int capture(void *arg, const cg_sse_event *ev) {
    return cg_replay_capture(arg, ev->data, ev->data_len) == 0 ? 0 : 1;
}

static void rebuild(const uint8_t *data, size_t size) {
    cg_buf cap;
    cg_buf_init(&cap, 4u << 20);
    cg_sse p;
    cg_sse_init(&p, 1u << 20);
    cg_sse_feed(&p, (const char *)data, size, capture, &cap);
    cg_sse_free(&p);
    for (int anthropic = 0; anthropic <= 1; anthropic++) {
        cg_buf body;
        cg_buf_init(&body, 8u << 20);
        if (cg_replay_rebuild(anthropic, cap.data ? cap.data : "", cap.len, &body) == 0) {
            json_t *j = json_loadb(body.data, body.len, 0, NULL);
            CHECK(json_is_object(j));
            json_decref(j);
            replay_parses(anthropic, body.data, body.len);
        }
        cg_buf_free(&body);
    }
    cg_buf_free(&cap);
}

static void ctx_ids(const uint8_t *data, size_t size) {
    char *h = malloc(size + 1);
    if (!h)
        return;
    memcpy(h, data, size);
    h[size] = '\0';
    char out[70000], again[70000], err[128];
    size_t n = 0, n2 = 0;
    if (cg_cache_ctx_ids(h, out, sizeof out, &n, err, sizeof err) == 0) {
        CHECK(cg_cache_ctx_ids(out, again, sizeof again, &n2, err, sizeof err) == 0);
        CHECK(n == n2 && strcmp(out, again) == 0);
        const char *prev = NULL;
        size_t prev_len = 0;
        for (const char *s = out; *s;) {
            const char *e = strchr(s, ',');
            size_t len = e ? (size_t)(e - s) : strlen(s);
            CHECK(len > 0);
            if (prev) {
                size_t m = len < prev_len ? len : prev_len;
                int c = memcmp(prev, s, m);
                CHECK(c < 0 || (c == 0 && prev_len < len));
            }
            prev = s;
            prev_len = len;
            s = e ? e + 1 : s + len;
        }
    }
    free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20))
        return 0;
    guard_vs_jansson(data, size);
    rebuild(data, size);
    ctx_ids(data, size);
    return 0;
}
