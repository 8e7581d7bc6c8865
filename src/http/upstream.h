/* upstream: HTTP/1.1 client for provider calls, on a libevent loop.
 *
 * Owns: one client per worker event loop with its keep-alive connection pool
 * keyed by (scheme, host, port, CA), bounded to max_conns idle connections
 * (least recently used closed first) and closing those idle longer than the
 * pool idle timeout; asynchronous DNS (evdns; IP literals skip it);
 * non-blocking connect with fallback across the resolved addresses; TLS
 * through bufferevent_openssl with certificate and host name verification
 * (system CA store, or a per-provider CA file); the request writer and the
 * response reader (h1.h); and the per-call timeouts: connect (DNS, TCP and
 * TLS), first byte (until the response headers) and idle (between body
 * reads). A call on a reused connection that fails before any response
 * byte arrived is retried once on a fresh connection. Nothing here blocks
 * the loop, except that a TLS context not prepared with
 * cg_upstream_tls_prepare() loads its CA file on first use.
 *
 * The process must ignore SIGPIPE (costgate serve does): a write to a
 * connection the provider closed is then an error, handled as above.
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

/* Request headers: "Name: value\r\n" lines in one capped buffer. A zeroed
 * struct is an empty list. Host, Content-Length, Transfer-Encoding and
 * Connection are written by the client and refused here, as are names that
 * are not HTTP tokens and values with control characters. The buffer may
 * hold secrets (API keys): reset and free wipe it. */
#define CG_UP_HEADERS_MAX (16u << 10)
typedef struct cg_up_headers {
    char *data;
    size_t len, cap;
} cg_up_headers;

/* 0, or -1 (bad name or value, or over CG_UP_HEADERS_MAX; list unchanged). */
int cg_up_headers_add(cg_up_headers *h, const char *name, const char *value);
void cg_up_headers_reset(cg_up_headers *h);
void cg_up_headers_free(cg_up_headers *h);

typedef struct cg_up_callbacks {
    /* One response header; name without the colon, value trimmed. */
    void (*on_header)(void *arg, const char *name, size_t nlen, const char *val, size_t vlen);
    /* All headers of the final response are in; status >= 200. */
    void (*on_headers_done)(void *arg, long status);
    int (*on_data)(void *arg, const char *p, size_t n);
    void (*on_done)(void *arg, cg_up_result res, const char *detail);
} cg_up_callbacks;

typedef struct cg_up_opts {
    const char *url;              /* must outlive the call */
    const cg_up_headers *headers; /* owned by the caller, must outlive the call */
    const char *body;             /* POST body (NULL = GET); must outlive the call */
    size_t body_len;
    const char *ca_file; /* https: PEM CA bundle to verify with (NULL = system store) */
    int connect_timeout_ms;
    int first_byte_timeout_ms;
    int idle_timeout_ms;
} cg_up_opts;

/* Call once per process before any thread starts. */
int cg_upstream_global_init(void);
/* Loads the TLS context for ca_file (NULL = the system CA store) so no call
 * reads it on an event loop. Thread-safe; 0, or -1 with a reason. */
int cg_upstream_tls_prepare(const char *ca_file, char *err, size_t errlen);
cg_upstream *cg_upstream_new(struct event_base *base, long max_conns);
/* Closes pooled connections and frees calls still running (without on_done). */
void cg_upstream_free(cg_upstream *u);
size_t cg_upstream_active(const cg_upstream *u);
/* Idle pooled connections are closed after ms (default 30 s). */
void cg_upstream_set_pool_idle(cg_upstream *u, int ms);

/* Connection counters, for tests and metrics. */
typedef struct cg_upstream_stats {
    uint64_t connects; /* connections opened (TCP connect started) */
    uint64_t reused;   /* calls that went out on a pooled connection */
    uint64_t retries;  /* calls retried on a fresh connection */
    size_t idle;       /* connections in the pool now */
} cg_upstream_stats;
void cg_upstream_get_stats(const cg_upstream *u, cg_upstream_stats *out);

cg_up_call *cg_upstream_start(cg_upstream *u, const cg_up_opts *o, const cg_up_callbacks *cb,
                              void *arg);
/* Stops a call; on_done will not be called. */
void cg_upstream_cancel(cg_up_call *c);
/* Resumes a call paused by CG_UP_PAUSE; the held bytes are delivered again
 * from the loop, not from inside this call. */
void cg_upstream_resume(cg_up_call *c);
/* Replaces the idle timeout (e.g. a drain deadline after client disconnect). */
void cg_upstream_set_idle_timeout(cg_up_call *c, int ms);
/* Microseconds since start of the first response byte, 0 if none yet. */
int64_t cg_upstream_ttfb_us(const cg_up_call *c);

#endif
