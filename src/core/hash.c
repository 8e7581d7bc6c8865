/* hash: SHA-256 helpers (see hash.h). */
#include "core/hash.h"

/* OpenSSL 3 deprecates the low-level digest functions in favour of EVP, but
 * keeps them; EVP_DigestInit_ex2 builds and frees a provider context on
 * every digest (allocation, cleanse, engine lookups), which perf put at about
 * 2% of a cache miss's CPU, against 1.1% for the hashing itself.
 * SHA256_Init/Update/Final hash in place (SHA-NI where the CPU has it). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <string.h>

_Static_assert(sizeof(SHA256_CTX) <= sizeof(cg_sha256_ctx), "cg_sha256_ctx too small");
_Static_assert(_Alignof(SHA256_CTX) <= _Alignof(cg_sha256_ctx), "cg_sha256_ctx misaligned");

void cg_sha256_init(cg_sha256_ctx *c) {
    SHA256_Init((SHA256_CTX *)(void *)c);
}

void cg_sha256_update(cg_sha256_ctx *c, const void *p, size_t n) {
    if (n)
        SHA256_Update((SHA256_CTX *)(void *)c, p, n);
}

void cg_sha256_final(cg_sha256_ctx *c, uint8_t out[32]) {
    SHA256_Final(out, (SHA256_CTX *)(void *)c);
}

void cg_sha256(const void *p, size_t n, uint8_t out[32]) {
    cg_sha256_ctx c;
    cg_sha256_init(&c);
    cg_sha256_update(&c, p, n);
    cg_sha256_final(&c, out);
}

void cg_hex(const uint8_t *p, size_t n, char *out) {
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = '\0';
}

int cg_hexval(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cg_unhex(const char *s, uint8_t *out, size_t n) {
    if (strlen(s) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int h = cg_hexval(s[2 * i]), l = cg_hexval(s[2 * i + 1]);
        if (h < 0 || l < 0)
            return -1;
        out[i] = (uint8_t)(h << 4 | l);
    }
    return 0;
}

int cg_ct_equal(const uint8_t *a, const uint8_t *b, size_t n) {
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}
