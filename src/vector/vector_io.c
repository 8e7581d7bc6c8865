/* vector_io: the cg_vindex file format (save / load).
 *
 * Owns: format version 1, little-endian:
 *   header, 128 bytes: magic "CGVINDEX", u32 version (1), u32 header size
 *     (128), u32 dim, M, M0, ef_construction, ef_search, brute_threshold,
 *     max_elements, nslots, nlive, ntomb, entry, i32 maxlevel, u64 seed,
 *     u64 rng state, u64 body bytes, zeros, u32 CRC-32C of bytes 0..123;
 *   body, one record per slot: u8 state (0 free, 1 live, 2 deleted), u8
 *     level, u16 zero; unless free: u64 id, u32 n0 + n0 u32 layer-0 links,
 *     for each layer 1..level u32 n + n u32 links, dim IEEE float16 (the
 *     normalised vector);
 *   trailer, 12 bytes: u32 CRC-32C of the body, "CGVEND\0\0".
 * Saving writes a temp file in the target's directory, fsyncs it, renames
 * it over the target and fsyncs the directory. Loading checks sizes before
 * allocating, every field's range, every link target, both checksums and
 * the trailer, so a truncated or corrupt file is an error message, never a
 * crash or an unbounded allocation.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vector/vector_internal.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vector_io writes little-endian fields with memcpy; port the encoders first"
#endif

#define HDR_SIZE 128
#define TRAILER_SIZE 12
#define VERSION 1
static const char MAGIC[8] = {'C', 'G', 'V', 'I', 'N', 'D', 'E', 'X'};
static const char END_MAGIC[8] = {'C', 'G', 'V', 'E', 'N', 'D', 0, 0};

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int code, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- buffered writer with a running CRC ---- */

typedef struct wbuf {
    int fd;
    uint8_t *b;
    size_t n, cap;
    uint32_t crc;
    int crc_on;
    int err; /* errno of the first failure */
} wbuf;

static void wflush(wbuf *w) {
    size_t off = 0;
    while (off < w->n && !w->err) {
        ssize_t r = write(w->fd, w->b + off, w->n - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            w->err = r < 0 ? errno : EIO;
        else
            off += (size_t)r;
    }
    w->n = 0;
}

static void wput(wbuf *w, const void *p, size_t n) {
    if (w->crc_on)
        w->crc = cg_crc32c(w->crc, p, n);
    const uint8_t *s = p;
    while (n && !w->err) {
        size_t k = w->cap - w->n < n ? w->cap - w->n : n;
        memcpy(w->b + w->n, s, k);
        w->n += k;
        s += k;
        n -= k;
        if (w->n == w->cap)
            wflush(w);
    }
}

static void wu32(wbuf *w, uint32_t v) {
    wput(w, &v, 4);
}

static void put32(uint8_t *h, size_t off, uint32_t v) {
    memcpy(h + off, &v, 4);
}
static void put64(uint8_t *h, size_t off, uint64_t v) {
    memcpy(h + off, &v, 8);
}
static uint32_t get32(const uint8_t *h, size_t off) {
    uint32_t v;
    memcpy(&v, h + off, 4);
    return v;
}
static uint64_t get64(const uint8_t *h, size_t off) {
    uint64_t v;
    memcpy(&v, h + off, 8);
    return v;
}

static uint64_t body_size(const cg_vindex *ix) {
    uint64_t n = 0;
    for (uint32_t v = 0; v < ix->nslots; v++) {
        const cg_vnode *nd = cg_v_node(ix, v);
        n += 4;
        if (nd->state == CG_V_FREE)
            continue;
        n += 8 + 4 + 4ull * nd->n0 + 2ull * (uint64_t)ix->dim;
        for (int l = 1; l <= nd->level; l++)
            n += 4 + 4ull * cg_v_upper(ix, nd, l)[0];
    }
    return n;
}

static void write_body(const cg_vindex *ix, wbuf *w) {
    for (uint32_t v = 0; v < ix->nslots && !w->err; v++) {
        const cg_vnode *nd = cg_v_node(ix, v);
        uint8_t rec[4] = {nd->state, nd->state == CG_V_FREE ? 0 : nd->level, 0, 0};
        wput(w, rec, 4);
        if (nd->state == CG_V_FREE)
            continue;
        wput(w, &nd->label, 8);
        wu32(w, nd->n0);
        wput(w, nd->l0, 4ull * nd->n0);
        for (int l = 1; l <= nd->level; l++) {
            const uint32_t *u = cg_v_upper(ix, nd, l);
            wput(w, u, 4ull * (u[0] + 1));
        }
        wput(w, cg_v_vec(ix, v), sizeof(uint16_t) * (size_t)ix->dim);
    }
}

static int fsync_dir_of(const char *path) {
    char *copy = strdup(path);
    if (!copy)
        return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int cg_vindex_save(cg_vindex *ix, const char *path, char *err, size_t errlen) {
    if (!ix || !path)
        return fail(err, errlen, CG_VE_INVAL, "vector index save: no index or path");
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    wbuf w = {.fd = -1, .cap = 1u << 20};
    w.b = malloc(w.cap);
    if (!tmp || !w.b) {
        free(tmp);
        free(w.b);
        return fail(err, errlen, CG_VE_NOMEM, "vector index save %s: out of memory", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    int rc = CG_VE_OK;
    /* wmu, not the rwlock: only writers change the graph, and searches go on */
    pthread_mutex_lock(&ix->wmu);
    w.fd = mkstemp(tmp);
    if (w.fd < 0) {
        rc = fail(err, errlen, CG_VE_IO, "vector index save %s: cannot create temp file: %s", path,
                  strerror(errno));
        goto out;
    }
    uint8_t h[HDR_SIZE] = {0};
    memcpy(h, MAGIC, 8);
    put32(h, 8, VERSION);
    put32(h, 12, HDR_SIZE);
    put32(h, 16, (uint32_t)ix->dim);
    put32(h, 20, (uint32_t)ix->M);
    put32(h, 24, (uint32_t)ix->M0);
    put32(h, 28, (uint32_t)ix->efc);
    pthread_rwlock_rdlock(&ix->rw); /* ef_search is the one field set outside wmu */
    put32(h, 32, (uint32_t)ix->efs);
    pthread_rwlock_unlock(&ix->rw);
    put32(h, 36, ix->brute_threshold);
    put32(h, 40, ix->max_elements);
    put32(h, 44, ix->nslots);
    put32(h, 48, ix->nlive);
    put32(h, 52, ix->ntomb);
    put32(h, 56, ix->entry);
    put32(h, 60, (uint32_t)ix->maxlevel);
    put64(h, 64, ix->seed);
    put64(h, 72, ix->rng);
    put64(h, 80, body_size(ix));
    put32(h, 124, cg_crc32c(0, h, 124));
    wput(&w, h, HDR_SIZE);
    w.crc_on = 1;
    write_body(ix, &w);
    w.crc_on = 0;
    wu32(&w, w.crc);
    wput(&w, END_MAGIC, 8);
    wflush(&w);
    if (!w.err && fsync(w.fd) != 0)
        w.err = errno;
    if (close(w.fd) != 0 && !w.err)
        w.err = errno;
    w.fd = -1;
    if (!w.err && rename(tmp, path) != 0)
        w.err = errno;
    if (w.err) {
        unlink(tmp);
        rc = fail(err, errlen, CG_VE_IO, "vector index save %s: %s", path, strerror(w.err));
        goto out;
    }
    if (fsync_dir_of(path) != 0)
        rc = fail(err, errlen, CG_VE_IO, "vector index save %s: fsync of directory: %s", path,
                  strerror(errno));
out:
    pthread_mutex_unlock(&ix->wmu);
    if (w.fd >= 0) {
        close(w.fd);
        unlink(tmp);
    }
    free(tmp);
    free(w.b);
    return rc;
}

/* ---- buffered reader with a running CRC ---- */

typedef struct rbuf {
    int fd;
    uint8_t *b;
    size_t n, pos, cap;
    uint64_t off; /* file offset of b[pos] */
    uint32_t crc;
    int err;
    int eof;
} rbuf;

/* 0, or -1 at end of file / read error (r->eof or r->err says which). */
static int rget(rbuf *r, void *dst, size_t n) {
    uint8_t *d = dst;
    while (n) {
        if (r->pos == r->n) {
            ssize_t k;
            do
                k = read(r->fd, r->b, r->cap);
            while (k < 0 && errno == EINTR);
            if (k < 0) {
                r->err = errno;
                return -1;
            }
            if (k == 0) {
                r->eof = 1;
                return -1;
            }
            r->n = (size_t)k;
            r->pos = 0;
        }
        size_t c = r->n - r->pos < n ? r->n - r->pos : n;
        memcpy(d, r->b + r->pos, c);
        r->crc = cg_crc32c(r->crc, r->b + r->pos, c);
        r->pos += c;
        r->off += c;
        d += c;
        n -= c;
    }
    return 0;
}

typedef struct loadctx {
    const char *path;
    char *err;
    size_t errlen;
    rbuf r;
    uint64_t fsize;
} loadctx;

static int rerr(loadctx *c) {
    if (c->r.err)
        return fail(c->err, c->errlen, CG_VE_IO, "vector index %s: read error at byte %llu: %s",
                    c->path, (unsigned long long)c->r.off, strerror(c->r.err));
    return fail(c->err, c->errlen, CG_VE_TRUNCATED,
                "vector index %s: truncated: file ends at byte %llu inside a record", c->path,
                (unsigned long long)c->fsize);
}

static int bad(loadctx *c, const char *what, uint32_t slot) {
    return fail(c->err, c->errlen, CG_VE_FORMAT,
                "vector index %s: corrupt record for slot %u (byte %llu): %s", c->path, slot,
                (unsigned long long)c->r.off, what);
}

static int read_links(loadctx *c, uint32_t *dst, uint32_t max, uint32_t self, uint32_t nslots,
                      uint32_t slot) {
    if (rget(&c->r, dst, 4))
        return rerr(c);
    if (dst[0] > max)
        return bad(c, "link count above the layer's maximum", slot);
    if (dst[0] && rget(&c->r, dst + 1, 4ull * dst[0]))
        return rerr(c);
    for (uint32_t j = 1; j <= dst[0]; j++)
        if (dst[j] >= nslots || dst[j] == self)
            return bad(c, "link to a slot out of range or to itself", slot);
    return CG_VE_OK;
}

static int read_body(loadctx *c, cg_vindex *ix, uint32_t nslots) {
    uint32_t *l0 = malloc(sizeof(uint32_t) * ((size_t)ix->M0 + 1));
    if (!l0)
        return fail(c->err, c->errlen, CG_VE_NOMEM, "vector index %s: out of memory", c->path);
    int rc = CG_VE_OK;
    for (uint32_t v = 0; v < nslots && rc == CG_VE_OK; v++) {
        if ((rc = cg_v_ensure_block(ix, v)) != CG_VE_OK) {
            rc = fail(c->err, c->errlen, rc, "vector index %s: out of memory", c->path);
            break;
        }
        ix->nslots = v + 1; /* so that cg_vindex_free releases what was read */
        cg_vnode *nd = cg_v_node(ix, v);
        uint8_t rec[4];
        if (rget(&c->r, rec, 4)) {
            rc = rerr(c);
            break;
        }
        if (rec[0] > CG_V_TOMB || rec[2] || rec[3] || rec[1] > CG_V_MAX_LEVEL ||
            (rec[0] == CG_V_FREE && rec[1])) {
            rc = bad(c, "bad state or level", v);
            break;
        }
        nd->state = rec[0];
        if (nd->state == CG_V_FREE) {
            ix->freelist[ix->nfree++] = v;
            continue;
        }
        if (rget(&c->r, &nd->label, 8)) {
            rc = rerr(c);
            break;
        }
        if ((rc = read_links(c, l0, (uint32_t)ix->M0, v, nslots, v)) != CG_VE_OK)
            break;
        nd->n0 = l0[0];
        memcpy(nd->l0, l0 + 1, 4ull * l0[0]);
        if (rec[1]) {
            nd->upper = calloc((size_t)rec[1] * (size_t)(ix->M + 1), sizeof(uint32_t));
            if (!nd->upper) {
                rc =
                    fail(c->err, c->errlen, CG_VE_NOMEM, "vector index %s: out of memory", c->path);
                break;
            }
            nd->level = rec[1];
        }
        for (int l = 1; l <= nd->level && rc == CG_VE_OK; l++)
            rc = read_links(c, cg_v_upper(ix, nd, l), (uint32_t)ix->M, v, nslots, v);
        if (rc)
            break;
        uint16_t *vec = cg_v_vec(ix, v);
        if (rget(&c->r, vec, sizeof(uint16_t) * (size_t)ix->dim)) {
            rc = rerr(c);
            break;
        }
        for (int i = 0; i < ix->dim; i++)
            if ((vec[i] & 0x7c00) == 0x7c00) {
                rc = bad(c, "vector holds NaN or infinity", v);
                break;
            }
        if (rc)
            break;
        if (nd->state == CG_V_LIVE) {
            if (cg_vidmap_get(&ix->ids, nd->label) != CG_V_NONE) {
                rc = bad(c, "duplicate id", v);
                break;
            }
            if (cg_vidmap_put(&ix->ids, nd->label, v) != CG_VE_OK) {
                rc =
                    fail(c->err, c->errlen, CG_VE_NOMEM, "vector index %s: out of memory", c->path);
                break;
            }
            ix->nlive++;
        } else {
            ix->ntomb++;
        }
    }
    free(l0);
    return rc;
}

/* Every link must reach a used slot that exists on that layer. */
static int check_graph(loadctx *c, cg_vindex *ix) {
    for (uint32_t v = 0; v < ix->nslots; v++) {
        const cg_vnode *nd = cg_v_node(ix, v);
        if (nd->state == CG_V_FREE)
            continue;
        for (int l = 0; l <= nd->level; l++) {
            uint32_t cnt;
            const uint32_t *ids;
            if (l == 0) {
                cnt = nd->n0;
                ids = nd->l0;
            } else {
                const uint32_t *u = cg_v_upper(ix, nd, l);
                cnt = u[0];
                ids = u + 1;
            }
            for (uint32_t j = 0; j < cnt; j++) {
                const cg_vnode *t = cg_v_node(ix, ids[j]);
                if (t->state == CG_V_FREE || t->level < l)
                    return bad(c, "link to a free slot or to a node absent from that layer", v);
            }
        }
    }
    return CG_VE_OK;
}

int cg_vindex_load(const char *path, cg_vindex **out, char *err, size_t errlen) {
    if (!path || !out)
        return fail(err, errlen, CG_VE_INVAL, "vector index load: no path");
    *out = NULL;
    loadctx c = {.path = path, .err = err, .errlen = errlen, .r = {.fd = -1, .cap = 1u << 20}};
    cg_vindex *ix = NULL;
    int rc = CG_VE_OK;
    c.r.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (c.r.fd < 0)
        return fail(err, errlen, CG_VE_IO, "vector index %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(c.r.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = fail(err, errlen, CG_VE_IO, "vector index %s: not a regular file", path);
        goto out;
    }
    c.fsize = (uint64_t)st.st_size;
    if (!(c.r.b = malloc(c.r.cap))) {
        rc = fail(err, errlen, CG_VE_NOMEM, "vector index %s: out of memory", path);
        goto out;
    }
    uint8_t h[HDR_SIZE];
    if (rget(&c.r, h, HDR_SIZE)) {
        rc = c.r.err ? rerr(&c)
                     : fail(err, errlen, CG_VE_TRUNCATED,
                            "vector index %s: truncated: %llu bytes, shorter than the header", path,
                            (unsigned long long)c.fsize);
        goto out;
    }
    if (memcmp(h, MAGIC, 8) != 0) {
        rc = fail(err, errlen, CG_VE_FORMAT, "vector index %s: not a costgate vector index", path);
        goto out;
    }
    if (get32(h, 124) != cg_crc32c(0, h, 124)) {
        rc = fail(err, errlen, CG_VE_CHECKSUM, "vector index %s: header checksum mismatch", path);
        goto out;
    }
    if (get32(h, 8) != VERSION || get32(h, 12) != HDR_SIZE) {
        rc = fail(err, errlen, CG_VE_FORMAT,
                  "vector index %s: format version %u (header %u bytes); this build reads "
                  "version %d",
                  path, get32(h, 8), get32(h, 12), VERSION);
        goto out;
    }
    cg_vindex_opts o = {
        .M = (int)get32(h, 20),
        .ef_construction = (int)get32(h, 28),
        .ef_search = (int)get32(h, 32),
        .max_elements = get32(h, 40),
        .brute_threshold = get32(h, 36),
        .seed = get64(h, 64),
    };
    uint32_t dim = get32(h, 16), M0 = get32(h, 24), nslots = get32(h, 44);
    uint32_t nlive = get32(h, 48), ntomb = get32(h, 52), entry = get32(h, 56);
    int32_t maxlevel = (int32_t)get32(h, 60);
    uint64_t body = get64(h, 80);
    if (dim < 1 || dim > CG_VINDEX_MAX_DIM || o.M < 2 || o.M > 256 || M0 != 2u * (uint32_t)o.M ||
        o.ef_construction < 1 || o.ef_construction > 65536 || o.ef_search < 0 ||
        o.ef_search > 65536 || o.max_elements < 1 || o.max_elements > CG_VINDEX_MAX_ELEMENTS ||
        o.brute_threshold < 1 || o.seed == 0) {
        rc = fail(err, errlen, CG_VE_FORMAT, "vector index %s: parameters out of range", path);
        goto out;
    }
    if (body + HDR_SIZE + TRAILER_SIZE != c.fsize) {
        int code = body + HDR_SIZE + TRAILER_SIZE > c.fsize ? CG_VE_TRUNCATED : CG_VE_FORMAT;
        rc =
            fail(err, errlen, code, "vector index %s: %s: %llu bytes, header says %llu", path,
                 code == CG_VE_TRUNCATED ? "truncated" : "trailing bytes",
                 (unsigned long long)c.fsize, (unsigned long long)(body + HDR_SIZE + TRAILER_SIZE));
        goto out;
    }
    if (!(ix = cg_v_alloc((int)dim, &o))) {
        rc = fail(err, errlen, CG_VE_NOMEM, "vector index %s: out of memory", path);
        goto out;
    }
    if (nslots > ix->slot_cap || (uint64_t)nslots * 4 > body || nlive > o.max_elements ||
        (uint64_t)nlive + ntomb > nslots || maxlevel < -1 || maxlevel > CG_V_MAX_LEVEL ||
        (entry == CG_V_NONE) != (maxlevel == -1) || (entry != CG_V_NONE && entry >= nslots)) {
        rc =
            fail(err, errlen, CG_VE_FORMAT, "vector index %s: inconsistent counts in header", path);
        goto out;
    }
    ix->rng = get64(h, 72);
    if (nslots && !(ix->freelist = malloc(sizeof(uint32_t) * nslots))) {
        rc = fail(err, errlen, CG_VE_NOMEM, "vector index %s: out of memory", path);
        goto out;
    }
    c.r.crc = 0;
    if ((rc = read_body(&c, ix, nslots)) != CG_VE_OK)
        goto out;
    uint32_t body_crc = c.r.crc;
    uint8_t t[TRAILER_SIZE];
    if (rget(&c.r, t, TRAILER_SIZE)) {
        rc = rerr(&c);
        goto out;
    }
    if (c.r.off != c.fsize || memcmp(t + 4, END_MAGIC, 8) != 0) {
        rc = fail(err, errlen, CG_VE_FORMAT, "vector index %s: bad trailer", path);
        goto out;
    }
    if (get32(t, 0) != body_crc) {
        rc = fail(err, errlen, CG_VE_CHECKSUM, "vector index %s: body checksum mismatch", path);
        goto out;
    }
    if (ix->nlive != nlive || ix->ntomb != ntomb) {
        rc = fail(err, errlen, CG_VE_FORMAT,
                  "vector index %s: header counts (%u live, %u deleted) differ from the body", path,
                  nlive, ntomb);
        goto out;
    }
    if ((rc = check_graph(&c, ix)) != CG_VE_OK)
        goto out;
    if (entry != CG_V_NONE) {
        const cg_vnode *e = cg_v_node(ix, entry);
        if (e->state == CG_V_FREE || (int)e->level != maxlevel) {
            rc = fail(err, errlen, CG_VE_FORMAT, "vector index %s: bad entry point", path);
            goto out;
        }
    } else if (nlive + ntomb) {
        rc = fail(err, errlen, CG_VE_FORMAT, "vector index %s: no entry point", path);
        goto out;
    }
    ix->entry = entry;
    ix->maxlevel = maxlevel;
    /* free slots are popped from the end: lowest slot first, as after a purge */
    for (uint32_t i = 0; i < ix->nfree / 2; i++) {
        uint32_t x = ix->freelist[i];
        ix->freelist[i] = ix->freelist[ix->nfree - 1 - i];
        ix->freelist[ix->nfree - 1 - i] = x;
    }
    *out = ix;
    ix = NULL;
out:
    cg_vindex_free(ix);
    if (c.r.fd >= 0)
        close(c.r.fd);
    free(c.r.b);
    return rc;
}
