/* hash: SHA-256 helpers (OpenSSL) for key hashes and content keys.
 *
 * Owns: one-shot and streaming SHA-256, hex encoding/decoding of digests and
 * constant-time comparison.
 */
#ifndef CG_CORE_HASH_H
#define CG_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

void cg_sha256(const void *p, size_t n, uint8_t out[32]);
/* Streaming SHA-256 for input that does not sit in one buffer: init, any
 * number of updates, final. The context is plain storage (no allocation,
 * nothing to free); final leaves it to be initialised again. */
typedef struct cg_sha256_ctx {
    uint64_t opaque[16]; /* OpenSSL's SHA256_CTX (hash.c checks the size) */
} cg_sha256_ctx;
void cg_sha256_init(cg_sha256_ctx *c);
void cg_sha256_update(cg_sha256_ctx *c, const void *p, size_t n);
void cg_sha256_final(cg_sha256_ctx *c, uint8_t out[32]);
void cg_hex(const uint8_t *p, size_t n, char *out /* 2n+1 */);
/* 0 on success; accepts upper or lower case. */
int cg_unhex(const char *s, uint8_t *out, size_t n);
/* The value of one hex digit (either case), or -1. */
int cg_hexval(int c);
int cg_ct_equal(const uint8_t *a, const uint8_t *b, size_t n);

#endif
