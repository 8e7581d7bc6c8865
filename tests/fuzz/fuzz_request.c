/* fuzz_request: libFuzzer target for client request bodies.
 *
 * Owns: feeding arbitrary bytes through what the gateway does with a request
 * body before any upstream call: json_loadb (with the server's flags), then,
 * for a JSON object, each adapter's parse() for each endpoint it serves
 * (OpenAI chat and embeddings, Anthropic messages), build() of the upstream
 * request when parse accepted, error_body() when it refused, and
 * cg_provider_text_chars(). Invariants (abort() on violation):
 *  - parse returns 0 or -1; -1 records a 400 with a type, a message and the
 *    offending field (err_param); 0 records no error, the body's model
 *    copied whole (1..127 bytes), stream/client_usage booleans and
 *    max_tokens >= 0 (>= 1 for Anthropic);
 *  - the error body rendered in the API's shape is valid JSON;
 *  - build either fails with a recorded error or produces a JSON object
 *    upstream body that, for an OpenAI stream whose client did not ask for
 *    usage, sets stream_options.include_usage = true, and is otherwise the
 *    client's bytes unchanged;
 *  - cg_provider_text_chars is >= 0.
 * Every allocation is released, so LeakSanitizer catches leaks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider/provider.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_request: invariant failed: %s (line %d)\n", #c, __LINE__);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int valid_json(const char *p, size_t n) {
    json_t *j = json_loadb(p, n, 0, NULL);
    int ok = j != NULL;
    json_decref(j);
    return ok;
}

static void check_error(const cg_provider_ops *ops, const cg_req *r) {
    CHECK(r->err_status == 400);
    CHECK(r->err_type[0] != '\0');
    CHECK(r->err_msg[0] != '\0');
    CHECK(r->err_param[0] != '\0');
    cg_buf out;
    cg_buf_init(&out, 1u << 16);
    ops->error_body(&out, r->err_status, r->err_type, r->err_code, r->err_param, r->err_msg);
    CHECK(out.len > 0 && valid_json(out.data, out.len));
    cg_buf_reset(&out);
    ops->stream_error(&out, r->err_type, r->err_msg);
    CHECK(out.len > 8 && out.data[out.len - 1] == '\n' && out.data[out.len - 2] == '\n');
    cg_buf_free(&out);
}

static void check_build(const cg_provider_ops *ops, cg_req *r, const uint8_t *data, size_t size) {
    if (ops->build(r) != 0) {
        CHECK(r->err_status == 413 || r->err_status == 500);
        return;
    }
    CHECK(r->up_headers.len > 0 &&
          memmem(r->up_headers.data, r->up_headers.len, "\r\n", 2) != NULL);
    CHECK(strncmp(r->url, "http://127.0.0.1:9/v1/", 22) == 0);
    json_t *up = json_loadb(r->up_body.data, r->up_body.len, 0, NULL);
    CHECK(json_is_object(up));
    if (ops == &cg_provider_openai && r->stream && !r->client_usage) {
        json_t *so = json_object_get(up, "stream_options");
        CHECK(json_is_true(json_object_get(so, "include_usage")));
    } else {
        CHECK(r->up_body.len == size && memcmp(r->up_body.data, data, size) == 0);
    }
    json_decref(up);
}

static void run(const cg_provider_ops *ops, cg_endpoint ep, json_t *body, const uint8_t *data,
                size_t size) {
    static const cg_provider_cfg prov = {
        .name = "fuzz", .api = CG_API_OPENAI, .base_url = "http://127.0.0.1:9"};
    cg_req *r = calloc(1, sizeof *r);
    CHECK(r != NULL);
    r->body = body;
    r->ep = ep;
    r->api = ops->api;
    r->ops = ops;
    r->prov = &prov;
    r->prov_key = "sk-fuzz";
    cg_buf_init(&r->body_raw, size + 1);
    cg_buf_init(&r->up_body, size + 4096);
    CHECK(cg_buf_append(&r->body_raw, data, size) == 0);

    int rc = ops->parse(r);
    CHECK(rc == 0 || rc == -1);
    if (rc == -1) {
        check_error(ops, r);
    } else {
        CHECK(r->err_status == 0);
        /* the model is the body's, whole: no NUL inside (jansson refuses \u0000
         * without JSON_ALLOW_NUL), no truncation */
        const char *m = json_string_value(json_object_get(body, "model"));
        CHECK(m != NULL && strcmp(r->model, m) == 0);
        CHECK(strlen(r->model) >= 1 && strlen(r->model) < sizeof r->model);
        CHECK(r->stream == 0 || r->stream == 1);
        CHECK(r->client_usage == 0 || r->client_usage == 1);
        CHECK(r->max_tokens >= (ops == &cg_provider_anthropic ? 1 : 0));
        check_build(ops, r, data, size);
    }

    cg_up_headers_free(&r->up_headers);
    cg_buf_free(&r->body_raw);
    cg_buf_free(&r->up_body);
    free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!j)
        return 0;
    if (json_is_object(j)) {
        run(&cg_provider_openai, CG_EP_CHAT, j, data, size);
        run(&cg_provider_openai, CG_EP_EMBEDDINGS, j, data, size);
        run(&cg_provider_anthropic, CG_EP_MESSAGES, j, data, size);
    }
    CHECK(cg_provider_text_chars(j) >= 0);
    json_decref(j);
    return 0;
}
