/* vector_internal: what the files of src/vector share and nobody else sees.
 *
 * Owns: the cg_vindex struct and node-record layout (used by vector.c for
 * the graph and by vector_io.c for the file format), the distance kernels
 * and CRC-32C (simd.c), and the id -> slot map helpers.
 *
 * Storage: node slots live in blocks that are never moved (block 0 holds
 * 16 slots, block k >= 1 holds 16 * 2^(k-1)), so growing the index never
 * copies vectors and a reader never sees memory move under it. A node
 * record is: label (u64), upper-layer links pointer, level, state, the
 * layer-0 link count and M0 link ids, then the vector as IEEE float16
 * (64-byte aligned). Queries stay float32; a stored vector is read as half
 * the bytes, which is what a search on a large index waits for.
 * Upper layers l = 1..level are one malloc'd array of level * (M + 1) u32
 * (count, then ids).
 */
#ifndef CG_VECTOR_VECTOR_INTERNAL_H
#define CG_VECTOR_VECTOR_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "vector/vector.h"

#define CG_V_BLOCK0_SHIFT 4 /* block 0: 16 slots */
#define CG_V_MAX_BLOCKS 32
#define CG_V_MAX_LEVEL 24
#define CG_V_NONE UINT32_MAX

enum { CG_V_FREE = 0, CG_V_LIVE = 1, CG_V_TOMB = 2 };

typedef struct cg_vnode {
    uint64_t label;
    uint32_t *upper; /* level * (M + 1) u32, NULL when level == 0 */
    uint8_t level;
    uint8_t state;
    uint16_t pad;
    uint32_t n0;   /* layer-0 link count */
    uint32_t l0[]; /* M0 ids; the vector follows at vec_off */
} cg_vnode;

typedef struct cg_vidmap {
    uint64_t *keys;
    uint32_t *vals; /* CG_V_NONE = empty */
    uint32_t cap;   /* power of two, 0 before first insert */
    uint32_t used;
} cg_vidmap;

struct cg_vindex {
    int dim;
    int M, M0, efc, efs;
    uint32_t brute_threshold;
    uint32_t max_elements; /* live bound */
    uint32_t slot_cap;     /* max_elements + tombstone allowance */
    uint64_t seed;
    uint64_t rng;
    double mult; /* 1 / ln(M) */

    size_t rec_size; /* bytes per node record (multiple of 64) */
    size_t vec_off;  /* offset of the vector in a record */
    uint8_t *blocks[CG_V_MAX_BLOCKS];

    uint32_t nslots; /* high-water mark of used slots */
    uint32_t nlive;
    uint32_t ntomb;
    uint32_t *freelist;
    uint32_t nfree;
    uint32_t entry; /* CG_V_NONE when empty */
    int maxlevel;
    cg_vidmap ids;

    pthread_rwlock_t rw; /* searches: read; publishing changes: write */
    pthread_mutex_t wmu; /* one writer at a time */
    float *tmpv;         /* writer's normalised input (dim floats) */
    float *tmpb;         /* writer's float32 copy of a stored vector (a base) */
    float *tmpc;         /* writer's float32 copy of a stored vector (a candidate) */
};

/* Block index and offset of a slot. */
static inline uint32_t cg_v_block_of(uint32_t s, uint32_t *off) {
    if (s < (1u << CG_V_BLOCK0_SHIFT)) {
        *off = s;
        return 0;
    }
    uint32_t h = 31u - (uint32_t)__builtin_clz(s);
    *off = s - (1u << h);
    return h - CG_V_BLOCK0_SHIFT + 1;
}
static inline uint32_t cg_v_block_slots(uint32_t b) {
    return b == 0 ? (1u << CG_V_BLOCK0_SHIFT) : (1u << (b + CG_V_BLOCK0_SHIFT - 1));
}
static inline uint32_t cg_v_block_first(uint32_t b) {
    return b == 0 ? 0 : (1u << (b + CG_V_BLOCK0_SHIFT - 1));
}
static inline cg_vnode *cg_v_node(const cg_vindex *ix, uint32_t s) {
    uint32_t off;
    uint32_t b = cg_v_block_of(s, &off);
    return (cg_vnode *)(ix->blocks[b] + (size_t)off * ix->rec_size);
}
static inline uint16_t *cg_v_vec(const cg_vindex *ix, uint32_t s) {
    return (uint16_t *)((uint8_t *)cg_v_node(ix, s) + ix->vec_off);
}
/* Links of node n at layer l (count at [0], ids from [1]) for l >= 1. */
static inline uint32_t *cg_v_upper(const cg_vindex *ix, const cg_vnode *n, int l) {
    return n->upper + (size_t)(l - 1) * (size_t)(ix->M + 1);
}

/* Makes sure the block holding slot s exists. 0 or CG_VE_NOMEM. */
int cg_v_ensure_block(cg_vindex *ix, uint32_t s);
/* Allocates an empty index with resolved options (no locks taken). */
cg_vindex *cg_v_alloc(int dim, const cg_vindex_opts *o);

/* id map (callers hold the locks) */
uint32_t cg_vidmap_get(const cg_vidmap *m, uint64_t key);
int cg_vidmap_put(cg_vidmap *m, uint64_t key, uint32_t val); /* 0 or CG_VE_NOMEM */
void cg_vidmap_del(cg_vidmap *m, uint64_t key);
void cg_vidmap_free(cg_vidmap *m);

/* simd.c */
typedef float (*cg_v_dot_fn)(const float *a, const float *b, int n);
typedef float (*cg_v_doth_fn)(const float *q, const uint16_t *v, int n);
extern cg_v_dot_fn cg_v_dot;   /* float32 . float32 */
extern cg_v_doth_fn cg_v_doth; /* float32 query . stored float16 vector */
void cg_v_f32_to_f16(const float *src, uint16_t *dst, int n);
void cg_v_f16_to_f32(const uint16_t *src, float *dst, int n);
void cg_v_kernels_init(void); /* idempotent, thread-safe */
const char *cg_v_kernel_name(void);
uint32_t cg_crc32c(uint32_t crc, const void *p, size_t n);

/* Normalises src into dst; CG_VE_INVAL for non-finite or zero vectors. */
int cg_v_normalize(const float *src, float *dst, int dim);

#endif
