/* sse: incremental Server-Sent Events parser for pass-through proxying.
 *
 * Owns: splitting a byte stream into SSE events as bytes arrive, giving for
 * each event both its raw bytes (to forward unchanged) and its parsed `event`
 * name and joined `data` (to monitor usage). Handles LF, CRLF and CR line
 * ends, comment lines, multi-line data. Memory is capped: one event may not
 * exceed max_event bytes.
 */
#ifndef CG_HTTP_SSE_H
#define CG_HTTP_SSE_H

#include <stddef.h>

#include "core/buf.h"

typedef struct cg_sse_event {
    const char *raw; /* the whole event, including its terminating blank line */
    size_t raw_len;
    const char *event; /* "" when the event had no `event:` field */
    size_t event_len;
    const char *data; /* data lines joined by '\n'; "" when none */
    size_t data_len;
} cg_sse_event;

/* Return 0 to go on, non-zero to stop parsing (cg_sse_feed then returns it). */
typedef int (*cg_sse_cb)(void *arg, const cg_sse_event *ev);

typedef struct cg_sse {
    cg_buf pending; /* bytes of the event in progress */
    cg_buf data;    /* scratch: joined data of the event being emitted */
    char event[64];
    size_t scan; /* bytes of pending already scanned for a boundary */
} cg_sse;

void cg_sse_init(cg_sse *s, size_t max_event);
void cg_sse_free(cg_sse *s);
/* Feeds bytes. Returns 0, -1 if an event exceeded the cap (the parser is then
 * unusable), or the callback's non-zero value. */
int cg_sse_feed(cg_sse *s, const char *p, size_t n, cg_sse_cb cb, void *arg);
/* Bytes of an unterminated event still held (a cut stream leaves these). */
size_t cg_sse_pending(const cg_sse *s);

#endif
