/* hash: SHA-256 helpers (OpenSSL) for key hashes and content keys.
 *
 * Owns: hex encoding/decoding of digests and constant-time comparison.
 */
#ifndef CG_CORE_HASH_H
#define CG_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

void cg_sha256(const void *p, size_t n, uint8_t out[32]);
void cg_hex(const uint8_t *p, size_t n, char *out /* 2n+1 */);
/* 0 on success; accepts upper or lower case. */
int cg_unhex(const char *s, uint8_t *out, size_t n);
/* The value of one hex digit (either case), or -1. */
int cg_hexval(int c);
int cg_ct_equal(const uint8_t *a, const uint8_t *b, size_t n);

#endif
