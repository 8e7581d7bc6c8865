/* upstream: HTTP client for provider calls, libcurl multi on a libevent loop.
 *
 * Owns: one curl multi handle per worker event loop (its keep-alive
 * connection pool), the socket/timer glue between curl and libevent, and the
 * per-call timeouts: connect, first byte (until the response headers), and
 * idle (between body chunks). Nothing here blocks the loop.
 *
 * Callbacks run on the loop thread. on_data may return CG_UP_PAUSE to leave
 * the bytes unconsumed (they are delivered again after cg_upstream_resume)
 * or CG_UP_ABORT to stop the call. on_done is called exactly once per call
 * unless the call was cancelled; after it returns the call is gone.
 */
#ifndef CG_HTTP_UPSTREAM_H
#define CG_HTTP_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct curl_slist;

typedef struct cg_upstream cg_upstream;
typedef struct cg_up_call cg_up_call;

typedef enum {
    CG_UP_OK = 0,         /* the response was read to its end */
    CG_UP_CONNECT_FAILED, /* could not connect / resolve / TLS */
    CG_UP_TIMEOUT_FIRST,  /* no response headers in time */
    CG_UP_TIMEOUT_IDLE,   /* the body stalled */
    CG_UP_BROKEN,         /* the connection broke mid-response (cut stream) */
    CG_UP_ABORTED,        /* on_data asked to stop */
} cg_up_result;

enum { CG_UP_CONTINUE = 0, CG_UP_PAUSE = 1, CG_UP_ABORT = -1 };

typedef struct cg_up_callbacks {
    /* One response header; name without the colon, value trimmed. */
    void (*on_header)(void *arg, const char *name, size_t nlen, const char *val, size_t vlen);
    /* All headers of the final response are in; status >= 200. */
    void (*on_headers_done)(void *arg, long status);
    int (*on_data)(void *arg, const char *p, size_t n);
    void (*on_done)(void *arg, cg_up_result res, const char *detail);
} cg_up_callbacks;

typedef struct cg_up_opts {
    const char *url;
    struct curl_slist *headers; /* owned by the caller, must outlive the call */
    const char *body;           /* POST body (NULL = GET); must outlive the call */
    size_t body_len;
    int connect_timeout_ms;
    int first_byte_timeout_ms;
    int idle_timeout_ms;
} cg_up_opts;

/* Call once per process before any thread starts. */
int cg_upstream_global_init(void);
cg_upstream *cg_upstream_new(struct event_base *base, long max_conns);
void cg_upstream_free(cg_upstream *u);
size_t cg_upstream_active(const cg_upstream *u);

cg_up_call *cg_upstream_start(cg_upstream *u, const cg_up_opts *o, const cg_up_callbacks *cb,
                              void *arg);
/* Stops a call; on_done will not be called. Not from inside a callback. */
void cg_upstream_cancel(cg_up_call *c);
/* Resumes a call paused by CG_UP_PAUSE. Not from inside a callback. */
void cg_upstream_resume(cg_up_call *c);
/* Replaces the idle timeout (e.g. a drain deadline after client disconnect). */
void cg_upstream_set_idle_timeout(cg_up_call *c, int ms);
/* Microseconds since start of the first response byte, 0 if none yet. */
int64_t cg_upstream_ttfb_us(const cg_up_call *c);

#endif
