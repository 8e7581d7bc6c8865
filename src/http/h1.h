/* h1: HTTP/1.1 wire format for the upstream client, without I/O.
 *
 * Owns: the incremental response parser (status line, headers,
 * Content-Length, chunked transfer coding with extensions and trailers,
 * read-until-close, 1xx interim responses skipped) and the split of an
 * http(s) URL into what a request needs (scheme, host, port, Host header,
 * request target). The parser accepts its input split at any byte, never
 * reads past what it was given, and bounds the header block (status line,
 * headers, 1xx responses and trailers together) to head_max bytes; anything
 * malformed is an error with a short reason, never a crash.
 *
 * Use: call cg_h1_next() on the unconsumed input until it returns
 * CG_H1_AGAIN (all input used, more is needed), CG_H1_DONE or CG_H1_ERROR.
 * Each call reports what it consumed in *used and at most one event. Header
 * and body spans point into the input or into the parser's own line buffer
 * and are valid until the next call. A copy of the parser taken while it is
 * in the body may be restored to re-parse the same bytes again (the upstream
 * client does this to pause).
 */
#ifndef CG_HTTP_H1_H
#define CG_HTTP_H1_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CG_H1_AGAIN = 0, /* input used up; feed more */
    CG_H1_HEADER,    /* a header of the final response: a = name, b = value */
    CG_H1_HEAD_DONE, /* the final (status >= 200) response head is complete */
    CG_H1_BODY,      /* a = a slice of the (de-chunked) body */
    CG_H1_DONE,      /* the response is complete */
    CG_H1_ERROR,     /* malformed or over a limit: see error */
} cg_h1_event;

typedef struct cg_h1_span {
    const char *p;
    size_t n;
} cg_h1_span;

typedef struct cg_h1_parser {
    int state;
    int status; /* of the final response, once its status line is read */
    int minor;  /* HTTP/1.<minor> */
    unsigned flags;
    uint64_t content_length; /* valid with the Content-Length flag */
    uint64_t remaining;      /* body or chunk bytes left */
    size_t head_bytes;       /* header-block bytes so far (all interim responses) */
    size_t head_max;
    size_t ext_bytes; /* chunk-extension bytes on the current size line */
    char *line;       /* a header line split across inputs (header phase only) */
    size_t line_len, line_cap;
    char error[112];
} cg_h1_parser;

void cg_h1_init(cg_h1_parser *p, size_t head_max);
/* Forgets the response; keeps the line buffer for the next one. */
void cg_h1_reset(cg_h1_parser *p);
void cg_h1_free(cg_h1_parser *p);
cg_h1_event cg_h1_next(cg_h1_parser *p, const char *in, size_t n, size_t *used, cg_h1_span *a,
                       cg_h1_span *b);
/* The connection ended: CG_H1_DONE when that ends the response (a body read
 * until close, or a response already complete), else CG_H1_ERROR. */
cg_h1_event cg_h1_eof(cg_h1_parser *p);
/* After CG_H1_DONE: 1 when the connection may carry another request. */
int cg_h1_keep_alive(const cg_h1_parser *p);
/* 1 once the head of the final response is complete. */
int cg_h1_in_body(const cg_h1_parser *p);

#define CG_H1_HOST_MAX 256
#define CG_H1_TARGET_MAX 2048

typedef struct cg_h1_url {
    int tls;
    int port;
    int literal;                        /* the host is an IP address */
    char host[CG_H1_HOST_MAX];          /* without IPv6 brackets */
    char authority[CG_H1_HOST_MAX + 8]; /* Host header value: host[:port] */
    /* the request target is "/" (if slash) then [target, target + target_len),
     * which points into the parsed URL: "/path?query" */
    int slash;
    const char *target;
    size_t target_len;
} cg_h1_url;

/* Splits an http:// or https:// URL (no user info; fragment dropped; the
 * request target at most CG_H1_TARGET_MAX bytes). out->target points into
 * url. 0, or -1 with a reason in err. */
int cg_h1_url_parse(const char *url, cg_h1_url *out, char *err, size_t errlen);

#endif
