/* hserve: our HTTP/1.1 server side, on a libevent loop.
 *
 * Owns: accepting connections from a listening socket, reading requests
 * (head and body, parsed by hparse.c: Content-Length or chunked bodies,
 * Expect: 100-continue, pipelined requests kept for later), keep-alive,
 * writing responses (a fixed-length reply sent with one writev, or a
 * chunked stream), output backpressure, timeouts (a request that does not
 * arrive, a client that stops reading, an idle keep-alive connection) and
 * noticing that a client left while a handler still owns its request.
 *
 * Why not evhttp: evhttp allocates, copies and formats every header of
 * every request and response (a strdup pair, a calloc and a printf each)
 * and walks its output through evbuffers; that was the largest single
 * cost of a proxied request (bench/RESULTS.md). Here a head is parsed in
 * place in the read buffer, response headers are appended to one buffer
 * as they are added, and the reply goes out with one system call.
 *
 * Lifetime of a request: the handler gets a cg_hreq and owns it until it
 * calls exactly one of cg_hreq_reply(), cg_hreq_end() (after
 * cg_hreq_start()) or cg_hreq_abandon(). If the client goes away first,
 * the close callback (when set) runs once, and the request stays valid,
 * with every write dropped, until the handler lets it go. Everything here
 * runs on the loop's thread.
 */
#ifndef CG_HTTP_HSERVE_H
#define CG_HTTP_HSERVE_H

#include <stddef.h>
#include <stdint.h>

#include "http/hparse.h"

struct event_base;

typedef struct cg_hserve cg_hserve;
typedef struct cg_hreq cg_hreq;
typedef void (*cg_hserve_fn)(cg_hreq *req, void *arg);

typedef struct cg_hserve_opts {
    size_t max_body; /* a larger body is not read: cg_hreq_too_large() */
    size_t max_head; /* request line and headers together */
    int timeout_ms;  /* reading a request, write progress, idle keep-alive */
    int admin;       /* passed through to handlers (cg_hreq_admin) */
} cg_hserve_opts;

/* Serves listen_fd (non-blocking, shared with other loops) on base. */
cg_hserve *cg_hserve_new(struct event_base *base, int listen_fd, const cg_hserve_opts *o,
                         cg_hserve_fn fn, void *arg);
/* Stops accepting; connections close once their current response is sent. */
void cg_hserve_stop_accepting(cg_hserve *s);
/* Closes every connection and frees the server (after its loop stopped). */
void cg_hserve_free(cg_hserve *s);

/* --- the request --------------------------------------------------------- */

cg_hmethod cg_hreq_method(const cg_hreq *r);
const char *cg_hreq_uri(const cg_hreq *r);
int cg_hreq_admin(const cg_hreq *r);
/* A request header (any case), or NULL. For a refused head (cg_hreq_bad),
 * only the fields read before the problem are there. */
const char *cg_hreq_header(const cg_hreq *r, const char *name);
const char *cg_hreq_body(const cg_hreq *r, size_t *len);
/* 1 when the body was over max_body and was not read; *size is its length
 * (Content-Length), or for a chunked body the bytes seen before giving up
 * (*exact = 0). The connection closes after the reply. */
int cg_hreq_too_large(const cg_hreq *r, uint64_t *size, int *exact);
/* Non-zero when the request could not be parsed: the status to answer with
 * (400, 431, 501, 505) and a reason. The handler must still reply; the
 * connection closes after it. */
int cg_hreq_bad(const cg_hreq *r, const char **why);
/* 1 once the client is known to be gone. */
int cg_hreq_client_gone(const cg_hreq *r);

/* --- the response -------------------------------------------------------- */

/* Adds a response header. Names and values with CR, LF or NUL are dropped,
 * as is anything past the header block's cap (64 KiB). */
void cg_hreq_add_header(cg_hreq *r, const char *name, const char *value);
/* A complete response with a body (Content-Length); ends the request. */
void cg_hreq_reply(cg_hreq *r, int status, const char *body, size_t len);
/* Starts a streamed response (chunked; close-delimited for HTTP/1.0). The
 * head is written with the first chunk (or the end): one send, not two. */
void cg_hreq_start(cg_hreq *r, int status);
void cg_hreq_chunk(cg_hreq *r, const char *p, size_t n);
/* Ends a stream; ends the request. */
void cg_hreq_end(cg_hreq *r);
/* cg_hreq_chunk(r, p, n) then cg_hreq_end(r), written in one send. */
void cg_hreq_end_with(cg_hreq *r, const char *p, size_t n);
/* Ends the request without a complete response: the connection closes. */
void cg_hreq_abandon(cg_hreq *r);
/* Response bytes not yet written to the socket. */
size_t cg_hreq_unsent(const cg_hreq *r);
/* fn(arg) once, if the client leaves before the request ends. */
void cg_hreq_on_close(cg_hreq *r, void (*fn)(void *), void *arg);
/* fn(arg) each time all unsent output has been written (backpressure). */
void cg_hreq_on_drain(cg_hreq *r, void (*fn)(void *), void *arg);

#endif
