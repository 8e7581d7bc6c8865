/* vector: approximate nearest-neighbour index for cosine similarity.
 *
 * Owns: cg_vindex, an HNSW graph (Malkov & Yashunin 2016: layered graph,
 * heuristic neighbour selection, ef_construction / ef_search, M / M0 = 2M)
 * over float32 vectors of a fixed dimension, with deletes (tombstones, then
 * a batched purge that repairs the graph and frees the slots), an exact
 * brute-force path for small indexes, and a versioned, checksummed file
 * format written atomically. Vectors are L2-normalised on the way in, so
 * the similarity returned is the cosine, in [-1, 1].
 *
 * Threads: any number of concurrent searches; writers (add, delete) are
 * serialised. A writer computes its graph changes while searches run and
 * holds the exclusive lock only to publish them, so searches are never
 * blocked for a whole insert. Not for the event loop: a search costs tens
 * to hundreds of microseconds.
 *
 * Partitions (one index per tenant/context scope) are in partition.h.
 */
#ifndef CG_VECTOR_VECTOR_H
#define CG_VECTOR_VECTOR_H

#include <stddef.h>
#include <stdint.h>

typedef struct cg_vindex cg_vindex;

/* Error codes (negative); cg_vindex_strerror names them. */
enum {
    CG_VE_OK = 0,
    CG_VE_INVAL = -1,    /* bad argument: dim mismatch, NaN/Inf or zero vector, k < 1 */
    CG_VE_NOMEM = -2,    /* allocation failed */
    CG_VE_FULL = -3,     /* max_elements live vectors already */
    CG_VE_NOTFOUND = -4, /* no vector with that id */
    CG_VE_IO = -5,       /* open/read/write/rename failed (errno kept) */
    CG_VE_FORMAT = -6,   /* not an index file, wrong version, inconsistent content */
    CG_VE_CHECKSUM = -7, /* header or body checksum mismatch */
    CG_VE_TRUNCATED = -8 /* the file ends early */
};
const char *cg_vindex_strerror(int err);

typedef struct cg_vindex_opts {
    int M;                    /* links per node on upper layers (layer 0: 2M); default 16 */
    int ef_construction;      /* candidate list while inserting; default 200 */
    int ef_search;            /* candidate list while searching (>= k); 0 = auto (below) */
    uint32_t max_elements;    /* bound on live vectors; default 1,048,576, max 2^30 */
    uint32_t brute_threshold; /* exact scan while count <= this; default 2048 (measured) */
    uint64_t seed;            /* level generator seed; default fixed (reproducible) */
} cg_vindex_opts;

#define CG_VINDEX_DEFAULT_M 16
#define CG_VINDEX_DEFAULT_EFC 200
/* ef_search 0 (the default) means 64 up to CG_VINDEX_AUTO_EF_BIG live
 * vectors and 128 above: measured recall@1 0.997-0.999 at 100k with 64,
 * 0.883 (64) and 0.952 (128) at 1M (docs/vector.md). */
#define CG_VINDEX_DEFAULT_EFS 64
#define CG_VINDEX_AUTO_EF_BIG 262144u
#define CG_VINDEX_DEFAULT_MAX (1u << 20)
#define CG_VINDEX_DEFAULT_BRUTE 2048
#define CG_VINDEX_MAX_DIM 65536
#define CG_VINDEX_MAX_ELEMENTS (1u << 30)

typedef struct cg_vhit {
    uint64_t id;
    float similarity; /* cosine similarity, higher is closer */
} cg_vhit;

/* Fills defaults for zero fields; returns CG_VE_INVAL for out-of-range ones
 * (M in 2..256, ef_construction in 1..65536, ef_search in 0..65536,
 * max_elements in 1..2^30). */
int cg_vindex_opts_resolve(cg_vindex_opts *o);

/* NULL on bad arguments or no memory. o may be NULL (all defaults). */
cg_vindex *cg_vindex_new(int dim, const cg_vindex_opts *o);
void cg_vindex_free(cg_vindex *ix);

/* Adds v (dim floats, need not be normalised, must be finite and non-zero)
 * under id. An id already present is replaced. CG_VE_FULL when the index
 * holds max_elements vectors and id is new. */
int cg_vindex_add(cg_vindex *ix, uint64_t id, const float *v);
/* CG_VE_NOTFOUND when id is absent. A deleted id is never returned again
 * (until re-added); its slot is reused after the next purge. */
int cg_vindex_delete(cg_vindex *ix, uint64_t id);
int cg_vindex_contains(cg_vindex *ix, uint64_t id);

/* Up to k nearest vectors to q, best first; returns how many (>= 0) or an
 * error. Exact while count <= brute_threshold, HNSW beyond. */
int cg_vindex_search(cg_vindex *ix, const float *q, int k, cg_vhit *out);
/* Same with an explicit ef (>= k) for this call; ef <= 0 uses the index's. */
int cg_vindex_search_ef(cg_vindex *ix, const float *q, int k, int ef, cg_vhit *out);
/* Exact search (brute force over all live vectors) regardless of size. */
int cg_vindex_search_exact(cg_vindex *ix, const float *q, int k, cg_vhit *out);

size_t cg_vindex_count(cg_vindex *ix);
int cg_vindex_dim(const cg_vindex *ix);
void cg_vindex_get_opts(cg_vindex *ix, cg_vindex_opts *out);
void cg_vindex_set_ef_search(cg_vindex *ix, int ef); /* 0 = auto */
/* Bytes held by the index (vectors, graph, id map). */
size_t cg_vindex_memory(cg_vindex *ix);
/* Repairs the graph around deleted vectors and frees their slots now
 * (normally automatic once tombstones reach 1/8 of the live count). */
int cg_vindex_purge(cg_vindex *ix);
/* Calls fn for every live id (under the read lock: fn must not call back
 * into ix). */
void cg_vindex_foreach(cg_vindex *ix, void (*fn)(void *ud, uint64_t id), void *ud);

/* Writes the index to path atomically (temp file in the same directory,
 * fsync, rename). Searches continue meanwhile; writers wait. 0 or an error
 * code, with a message in err. */
int cg_vindex_save(cg_vindex *ix, const char *path, char *err, size_t errlen);
/* Reads an index written by cg_vindex_save. On any problem (missing,
 * truncated, corrupt, other version) returns an error code with a message
 * naming the file and what is wrong, and *out stays NULL; never crashes on
 * bad input. */
int cg_vindex_load(const char *path, cg_vindex **out, char *err, size_t errlen);

/* Which distance kernel this CPU uses: "avx512", "avx2", "sse2". */
const char *cg_vindex_kernel(void);

#endif
