/* hash: SHA-256 helpers (see hash.h). */
#include "core/hash.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <string.h>

/* OpenSSL 3's one-shot SHA256() looks the algorithm up on every call (more
 * work than hashing a short key); here it is fetched once per process and
 * each thread keeps one digest context. */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static EVP_MD *g_md;
static pthread_key_t g_ctx_key;

static void free_ctx(void *ctx) {
    EVP_MD_CTX_free(ctx);
}

static void init_once(void) {
    g_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (pthread_key_create(&g_ctx_key, free_ctx) != 0) {
        EVP_MD_free(g_md);
        g_md = NULL;
    }
}

void cg_sha256(const void *p, size_t n, uint8_t out[32]) {
    pthread_once(&g_once, init_once);
    EVP_MD_CTX *ctx = g_md ? pthread_getspecific(g_ctx_key) : NULL;
    if (g_md && !ctx) {
        ctx = EVP_MD_CTX_new();
        if (ctx && pthread_setspecific(g_ctx_key, ctx) != 0) {
            EVP_MD_CTX_free(ctx);
            ctx = NULL;
        }
    }
    unsigned int len = 0;
    if (!ctx || !EVP_DigestInit_ex2(ctx, g_md, NULL) || !EVP_DigestUpdate(ctx, p, n) ||
        !EVP_DigestFinal_ex(ctx, out, &len))
        SHA256((const unsigned char *)p, n, out); /* the slow path still answers */
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
