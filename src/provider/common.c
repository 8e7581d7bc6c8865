/* common: helpers shared by the provider adapters (see provider.h). */
#include <stdlib.h>
#include <string.h>

#include "provider/provider.h"

const cg_provider_ops *cg_provider_for_api(cg_api api) {
    return api == CG_API_ANTHROPIC ? &cg_provider_anthropic : &cg_provider_openai;
}

/* Every string value and object key below v: a deliberate over-count of the
 * text a provider tokenizes (roles and keys included), so estimates err high. */
static int64_t chars_in(const json_t *v) {
    int64_t n = 0;
    if (json_is_string(v))
        return (int64_t)json_string_length(v);
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) n += chars_in(e);
    } else if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e) n += (int64_t)strlen(k) + chars_in(e);
    }
    return n;
}

int64_t cg_provider_text_chars(const json_t *v) {
    int64_t n = 0;
    const char *keys[] = {"messages", "system", "tools", "input", "functions", NULL};
    for (int i = 0; keys[i]; i++)
        n += chars_in(json_object_get(v, keys[i]));
    return n;
}

int64_t cg_provider_scan_text(const char *p, size_t n, const char *const *keys) {
    int64_t total = 0;
    const char *end = p + n;
    for (int k = 0; keys[k]; k++) {
        size_t kl = strlen(keys[k]);
        const char *s = p;
        while (s < end) {
            const char *q = memmem(s, (size_t)(end - s), keys[k], kl);
            if (!q)
                break;
            s = q + kl;
            /* require "key": "... (the key is quoted in the pattern) */
            while (s < end && (*s == ' ' || *s == ':'))
                s++;
            if (s >= end || *s != '"')
                continue;
            s++;
            while (s < end && *s != '"') {
                if (*s == '\\' && s + 1 < end)
                    s++;
                s++;
                total++;
            }
        }
    }
    return total;
}

int cg_provider_body(cg_req *r) {
    if (!r->body_modified)
        return cg_buf_append(&r->up_body, r->body_raw.data, r->body_raw.len);
    char *s = json_dumps(r->body, JSON_COMPACT);
    int rc = s ? cg_buf_puts(&r->up_body, s) : -1;
    free(s);
    return rc;
}
