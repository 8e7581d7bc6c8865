/* bpe: byte-pair-encoding rank tables and the merge algorithm.
 *
 * Owns: parsing a .tiktoken rank file ("base64(token) rank" per line) into
 * an immutable table (token bytes pool + open-addressing hash from bytes to
 * rank), rank lookups, and merging one piece into ranks exactly as
 * tiktoken's byte_pair_merge does (lowest rank first, leftmost on ties):
 * a linear scan for short pieces and a binary heap over a linked list for
 * long ones, so a piece of n bytes costs O(n log n), never O(n^2).
 */
#ifndef CG_TOKENIZE_BPE_H
#define CG_TOKENIZE_BPE_H

#include <stddef.h>
#include <stdint.h>

#define CG_BPE_NO_RANK UINT32_MAX

typedef struct cg_bpe cg_bpe;

/* Parses a .tiktoken file's contents. NULL with a message on error
 * (malformed line, duplicate token, missing single byte). */
cg_bpe *cg_bpe_parse(const char *data, size_t len, char *err, size_t errlen);
void cg_bpe_free(cg_bpe *b);
/* Rank of the byte string, or CG_BPE_NO_RANK. */
uint32_t cg_bpe_rank(const cg_bpe *b, const uint8_t *p, size_t n);
/* Number of ranks (max rank + 1) and the bytes of one rank (NULL if none). */
uint32_t cg_bpe_size(const cg_bpe *b);
const uint8_t *cg_bpe_bytes(const cg_bpe *b, uint32_t rank, size_t *len);
/* Memory held by the table, in bytes. */
size_t cg_bpe_memory(const cg_bpe *b);

/* Output of the encoder: a growable id array (heap, capped at max ids), or
 * only a count when count_only is set. */
typedef struct cg_bpe_sink {
    uint32_t *ids;
    size_t n;   /* ids written (or counted) */
    size_t cap; /* allocated capacity of ids */
    size_t max; /* hard cap on n; exceeding it fails */
    int count_only;
    int failed;
} cg_bpe_sink;

/* Appends one id; 0 or -1 (cap exceeded / out of memory; sink->failed set). */
int cg_bpe_sink_grow(cg_bpe_sink *s, uint32_t id);
static inline int cg_bpe_sink_push(cg_bpe_sink *s, uint32_t id) {
    if (s->n < s->max && (s->count_only || s->n < s->cap)) {
        if (!s->count_only)
            s->ids[s->n] = id;
        s->n++;
        return 0;
    }
    return cg_bpe_sink_grow(s, id);
}
/* Encodes one pre-tokenised piece into the sink. 0 or -1. */
int cg_bpe_encode_piece(const cg_bpe *b, const uint8_t *p, size_t n, cg_bpe_sink *out);

/* The hash of a piece, computed ahead with its slot prefetched, so a batch
 * of pieces overlaps their cache misses. */
typedef struct cg_bpe_key {
    uint64_t h, k8;
} cg_bpe_key;
void cg_bpe_key_prep(const cg_bpe *b, const uint8_t *p, size_t n, cg_bpe_key *k);
uint32_t cg_bpe_rank_key(const cg_bpe *b, const uint8_t *p, size_t n, const cg_bpe_key *k);
/* Merges a piece that is not itself a token (n >= 2). 0 or -1. */
int cg_bpe_merge(const cg_bpe *b, const uint8_t *p, size_t n, cg_bpe_sink *out);
/* The same for 2 <= n <= CG_BPE_SMALL_PIECE into out[n]; returns the count. */
#define CG_BPE_SMALL_PIECE 128u
size_t cg_bpe_merge_small(const cg_bpe *b, const uint8_t *p, size_t n, uint32_t *out);

#endif
