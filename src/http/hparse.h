/* hparse: HTTP/1.1 request parsing for the server side, without I/O.
 *
 * Owns: finding the end of a request head in a byte stream, parsing it in
 * place (request line, header fields, the headers that frame the message:
 * Content-Length, Transfer-Encoding, Connection, Expect), and decoding a
 * chunked request body incrementally. Everything here takes untrusted
 * bytes: every length is bounded, anything ambiguous (two different
 * Content-Lengths, Content-Length with Transfer-Encoding, obsolete line
 * folding, a space before the colon) is refused with a status and a short
 * reason instead of being guessed at, as RFC 9112 asks of a proxy.
 *
 * The head parser writes NULs into the buffer (after the method, target,
 * each name and each value) and records offsets, not pointers, so the
 * caller may move or grow the buffer afterwards.
 */
#ifndef CG_HTTP_HPARSE_H
#define CG_HTTP_HPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef enum {
    CG_HM_OTHER = 0,
    CG_HM_GET,
    CG_HM_HEAD,
    CG_HM_POST,
    CG_HM_PUT,
    CG_HM_DELETE,
    CG_HM_OPTIONS,
} cg_hmethod;

#define CG_HP_MAX_HEADERS 96

typedef struct cg_hp_field {
    uint32_t name_off, name_len;
    uint32_t val_off, val_len;
} cg_hp_field;

typedef struct cg_hp_head {
    cg_hmethod method;
    uint32_t target_off, target_len;
    int minor;              /* HTTP/1.<minor> */
    int64_t content_length; /* -1: none */
    int chunked;            /* Transfer-Encoding: chunked */
    int keep_alive;         /* the client allows another request on this connection */
    int expect_continue;    /* Expect: 100-continue */
    uint32_t n_fields;
    cg_hp_field f[CG_HP_MAX_HEADERS];
} cg_hp_head;

/* Looks for the blank line ending a head in buf[0, len). Returns the head's
 * length including that line, or 0 when it is not there yet; *scan keeps
 * where to resume (start it at 0). A bare LF ends lines too. */
size_t cg_hp_head_end(const char *buf, size_t len, size_t *scan);

/* Parses the head buf[0, head_len) in place. 0, or the HTTP status to
 * answer with (400, 501, 505) and a reason in *why. */
int cg_hp_parse_head(char *buf, size_t head_len, cg_hp_head *h, const char **why);

/* The value of header `name` (any case) in a parsed head, or NULL. */
const char *cg_hp_find(const char *buf, const cg_hp_head *h, const char *name);

/* Incremental chunked-body decoder (sizes, extensions, data, trailers). */
typedef struct cg_hp_chunked {
    int state;
    uint64_t remaining; /* data bytes left in the current chunk */
    size_t line;        /* bytes of the current size or trailer line */
    size_t trailer;     /* trailer bytes so far */
    uint64_t total;     /* decoded body bytes so far */
} cg_hp_chunked;

typedef enum { CG_HP_MORE = 0, CG_HP_DONE, CG_HP_ERROR } cg_hp_rc;

void cg_hp_chunked_init(cg_hp_chunked *d);
/* Decodes from in[0, n): data goes to out (up to its cap; past it, bytes are
 * counted in total but dropped, and *over is set). *used is what was read;
 * on CG_HP_DONE the bytes after *used belong to the next request. */
cg_hp_rc cg_hp_chunked_feed(cg_hp_chunked *d, const char *in, size_t n, size_t *used, cg_buf *out,
                            int *over);

#endif
