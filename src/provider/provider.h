/* provider: the adapter table every provider API implements.
 *
 * Owns: the plug-in point between the generic pipeline and one wire API
 * (OpenAI chat/embeddings, Anthropic messages). An adapter validates and reads
 * a client request, builds the upstream request, monitors streamed events and
 * final bodies for usage, and renders errors in its API's own shape.
 */
#ifndef CG_PROVIDER_PROVIDER_H
#define CG_PROVIDER_PROVIDER_H

#include "core/buf.h"
#include "http/sse.h"
#include "pipeline/request.h"

typedef struct cg_provider_ops {
    const char *name;
    cg_api api;
    /* Validates r->body for r->ep and fills model, stream, max_tokens,
     * client_usage. 0, or -1 after cg_req_fail(). */
    int (*parse)(cg_req *r);
    /* Fills r->url, r->up_headers and r->up_body. 0 or -1 after cg_req_fail(). */
    int (*build)(cg_req *r);
    /* One upstream SSE event: update usage; *forward = 0 to drop it;
     * *terminal = 1 if it ends the stream (held until the ledger commit). */
    void (*on_event)(cg_req *r, const cg_sse_event *ev, int *forward, int *terminal);
    /* A complete non-stream 2xx body. */
    void (*on_body)(cg_req *r, const json_t *body);
    /* An error body in this API's shape. */
    void (*error_body)(cg_buf *out, int status, const char *type, const char *code,
                       const char *param, const char *msg);
    /* An SSE error event for a stream that broke after it started. */
    void (*stream_error)(cg_buf *out, const char *type, const char *msg);
} cg_provider_ops;

extern const cg_provider_ops cg_provider_openai;
extern const cg_provider_ops cg_provider_anthropic;

const cg_provider_ops *cg_provider_for_api(cg_api api);
/* Appends the body to send upstream to r->up_body: the client's bytes as
 * received, or r->body re-serialised when admission changed it (e.g. a
 * downgraded model). 0, or -1 when it does not fit. */
int cg_provider_body(cg_req *r);
/* The `"usage":{...}` object in raw JSON text (the first or the last one), as
 * [*os, *oe), found without parsing the rest. 0, or -1 when absent. */
int cg_provider_usage_object(const char *p, size_t n, int last, const char **os, const char **oe);
/* Reads usage (and the served model) from a complete 2xx non-stream body
 * without parsing all of it. 0 when usage was found and valid, else -1 (the
 * caller then parses the whole body). */
int cg_provider_fast_usage(cg_req *r, const char *body, size_t n);
/* Reads a usage object's text [p, p + n) (as cg_provider_usage_object finds
 * it) without a JSON tree: 0 with *out set exactly as jansson plus
 * cg_usage_from_anthropic / _openai / _openai_embedding would set it, or 1
 * when the text holds anything the scanner does not fully understand (see
 * usage_scan.c); *out is then untouched. */
int cg_provider_scan_usage(cg_api api, int embedding, const char *p, size_t n, cg_usage *out);
/* The usage object's text read into *out: the scanner, else jansson and
 * cg_usage_from_*. 0, or -1 as cg_usage_from_* (with *out zeroed when the
 * text parsed but was refused, untouched when it did not parse). */
int cg_provider_read_usage(cg_api api, int embedding, const char *p, size_t n, cg_usage *out);
/* Sums the text a request carries (strings under content/text/system/tools),
 * for estimates when the provider reports no usage. */
int64_t cg_provider_text_chars(const json_t *v);
/* Counts bytes of JSON string values following any of `keys` (each with its
 * quotes: "\"content\"") in raw JSON text, an escape sequence's backslash
 * not counted, without parsing it (cheap per stream chunk). */
int64_t cg_provider_scan_text(const char *p, size_t n, const char *const *keys);

/* What one pass over a stream event's JSON finds (cg_provider_scan_event). */
typedef struct cg_event_scan {
    int64_t text_chars; /* as cg_provider_scan_text over `keys` */
    const char *usage;  /* the '{' of the first "usage": {...}, or NULL */
    const char *model;  /* the first "model" string value (unescaped only), */
    size_t model_len;   /* or NULL */
    int choices_empty;  /* a "choices": [] key */
} cg_event_scan;
/* One pass over raw JSON text p[0..n) for the per-event facts above. */
void cg_provider_scan_event(const char *p, size_t n, const char *const *keys, cg_event_scan *out);

#endif
