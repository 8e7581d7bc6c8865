/* admin_client: the blocking HTTP call the command-line tools make to a
 * running gateway's admin API (`costgate budget`, `costgate cache`).
 *
 * Owns: one request with libcurl's easy interface: JSON content type, the
 * admin key as a bearer token (wiped from the stack afterwards), a 10 s
 * timeout, and the response body collected into a capped buffer. For CLI
 * processes only: it blocks, so it must never run on a gateway event loop.
 */
#ifndef CG_HTTP_ADMIN_CLIENT_H
#define CG_HTTP_ADMIN_CLIENT_H

#include "core/buf.h"

/* Sends method (GET, POST, PUT, ...) to url with body (NULL: none) and key
 * (NULL: no Authorization). The response body is appended to out and its
 * HTTP status stored in *status. 0 when a response arrived (any status);
 * -1 on a transport failure, reported on stderr prefixed with `who`. */
int cg_admin_call(const char *who, const char *url, const char *key, const char *method,
                  const char *body, cg_buf *out, long *status);

#endif
