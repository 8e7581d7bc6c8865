/* server: the HTTP front end and its worker threads.
 *
 * Owns: the listening sockets (one shared listener accepted by every worker
 * loop, plus an optional admin listener), worker threads with one event loop
 * and one upstream pool each, request dispatch by path, the admin endpoints
 * (/metrics, /admin/costs), graceful shutdown, and cg_worker_post(), the
 * only way another thread hands work to a worker loop.
 */
#ifndef CG_HTTP_SERVER_H
#define CG_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "pipeline/gateway.h"

struct event_base;
struct cg_upstream;

typedef struct cg_worker cg_worker;
typedef struct cg_server cg_server;

cg_server *cg_server_start(cg_gateway *gw, char *err, size_t errlen);
int cg_server_port(const cg_server *s);
int cg_server_admin_port(const cg_server *s);
/* Stops accepting, lets in-flight requests finish for up to grace_ms, joins
 * the workers and frees the server. */
void cg_server_stop(cg_server *s, int grace_ms);

struct event_base *cg_worker_base(cg_worker *w);
struct cg_upstream *cg_worker_upstream(cg_worker *w);
/* The worker's number, 0 .. workers - 1 (its ledger spool ring). */
int cg_worker_id(const cg_worker *w);
/* Runs fn(arg) on w's loop thread. Thread-safe. */
void cg_worker_post(cg_worker *w, void (*fn)(void *), void *arg);
/* A new unique request id ("req_" + 24 hex): the 48 low bits of now_ms
 * (the request's wall-clock start, unix ms), then 48 random bits. */
void cg_worker_new_id(cg_worker *w, int64_t now_ms, char out[48]);
/* 1 if the request URI is exactly path (optionally followed by a query). */
int cg_path_is(const char *uri, const char *path);
/* Plain JSON reply, and an error in the given API's shape. */
struct cg_hreq;
void cg_server_reply_json(struct cg_hreq *req, int status, const char *body, size_t len);
void cg_server_reply_error(struct cg_hreq *req, cg_api api, int status, const char *type,
                           const char *code, const char *msg);
/* In-flight accounting, for graceful shutdown. */
void cg_worker_request_done(cg_worker *w);

#endif
