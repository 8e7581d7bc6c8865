/* model: loading and validating the embedder's model file.
 *
 * Owns: the file format written by scripts/convert_use.mjs (docs/embed.md):
 *   header (128 bytes): magic "CGEMBUSE", u32 format version (1), u32 header
 *     bytes, u64 payload bytes, u32 tensor count, sha256 of the payload at
 *     32, sha256 of the converter's inputs at 64;
 *   payload: a table of contents of 72-byte entries (name[32], u32 dtype,
 *     u32 ndim, u32 dims[4], u64 offset from the payload start, u64 bytes),
 *     then each tensor, 64-byte aligned in the file.
 * Every field is checked before use, so a truncated or corrupt file gives a
 * message and NULL, never a crash. Also builds the tokenizer's trie, the
 * timing-signal table, and packs the weight matrices for the kernels.
 */
#include "embed/embed_internal.h"

#include "core/hash.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define MAGIC "CGEMBUSE"
#define FORMAT_VERSION 1u
#define HEADER_BYTES 128u
#define TOC_ENTRY 72u
#define NAME_BYTES 32u
#define MAX_FILE_BYTES (256u << 20)
#define MAX_TENSORS 256u

enum { DT_F32 = 0, DT_F64 = 1, DT_I32 = 2, DT_U8 = 3 };

typedef struct {
    const uint8_t *file;
    size_t file_len;
    uint32_t n_tensors;
    char *err;
    size_t errcap;
} loader;

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p) {
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static size_t dt_size(uint32_t dt) {
    return dt == DT_F64 ? 8 : dt == DT_U8 ? 1 : 4;
}

/* Finds tensor `name`, checks dtype and shape (dims[i] < 0: any), and
 * returns a pointer to its data, or NULL with err set. */
static void *tensor(loader *l, const char *name, uint32_t dtype, int ndim, const long *dims,
                    uint32_t *dims_out) {
    for (uint32_t i = 0; i < l->n_tensors; i++) {
        const uint8_t *t = l->file + HEADER_BYTES + (size_t)i * TOC_ENTRY;
        if (strncmp((const char *)t, name, NAME_BYTES) != 0)
            continue;
        uint32_t dt = rd32(t + 32), nd = rd32(t + 36);
        uint64_t off = rd64(t + 56), nbytes = rd64(t + 64);
        if (dt != dtype || nd != (uint32_t)ndim) {
            snprintf(l->err, l->errcap, "tensor %s: dtype %u rank %u, expected dtype %u rank %d",
                     name, dt, nd, dtype, ndim);
            return NULL;
        }
        uint64_t count = 1;
        for (int d = 0; d < ndim; d++) {
            uint32_t v = rd32(t + 40 + 4 * d);
            if (dims[d] >= 0 && v != (uint64_t)dims[d]) {
                snprintf(l->err, l->errcap, "tensor %s: dimension %d is %u, expected %ld", name, d,
                         v, dims[d]);
                return NULL;
            }
            if (dims_out)
                dims_out[d] = v;
            count *= v; /* each v < 2^32, at most 4 dims; checked against nbytes below */
            if (count > MAX_FILE_BYTES) {
                snprintf(l->err, l->errcap, "tensor %s: too large", name);
                return NULL;
            }
        }
        size_t payload = l->file_len - HEADER_BYTES;
        if (count * dt_size(dt) != nbytes || off > payload || nbytes > payload - off ||
            (HEADER_BYTES + off) % 64 != 0) {
            snprintf(l->err, l->errcap, "tensor %s: bad size or offset (file truncated or corrupt)",
                     name);
            return NULL;
        }
        return (void *)(l->file + HEADER_BYTES + off);
    }
    snprintf(l->err, l->errcap, "tensor %s is missing", name);
    return NULL;
}

static const float *vecf(loader *l, const char *name, long n) {
    long d[1] = {n};
    return tensor(l, name, DT_F32, 1, d, NULL);
}

static int mat(loader *l, cg_emb_mat *m, const char *wname, const char *bname, long K, long N) {
    long d[2] = {K, N};
    m->w = tensor(l, wname, DT_F32, 2, d, NULL);
    m->b = m->w ? vecf(l, bname, N) : NULL;
    m->K = (int)K;
    m->N = (int)N;
    return m->w && m->b ? 0 : -1;
}

static int read_file(const char *path, void **out, size_t *out_len, char *err, size_t errcap) {
    FILE *f = fopen(path, "rb");
    void *buf = NULL;
    int rc = -1;
    struct stat st;
    if (!f) {
        snprintf(err, errcap, "%s: %s (run scripts/setup.sh to convert the model)", path,
                 strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errcap, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size < (off_t)HEADER_BYTES || st.st_size > (off_t)MAX_FILE_BYTES) {
        snprintf(err, errcap, "%s: %lld bytes is not a model file (truncated?)", path,
                 (long long)st.st_size);
        goto out;
    }
    size_t len = (size_t)st.st_size, huge = (size_t)2 << 20;
    /* 2 MiB aligned and, where the kernel allows, backed by huge pages: each
     * sentence streams all weight matrices, and 4 KiB pages would cost a TLB
     * miss every 4 KiB. */
    size_t cap = (len + huge - 1) / huge * huge;
    buf = aligned_alloc(huge, cap);
    if (!buf) {
        snprintf(err, errcap, "%s: out of memory", path);
        goto out;
    }
#ifdef MADV_HUGEPAGE
    (void)madvise(buf, cap, MADV_HUGEPAGE); /* a hint: failure is harmless */
#endif
    if (fread(buf, 1, len, f) != len) {
        snprintf(err, errcap, "%s: read error", path);
        goto out;
    }
    *out = buf;
    *out_len = len;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    fclose(f);
    return rc;
}

static int check_header(loader *l, const char *path) {
    const uint8_t *h = l->file;
    uint8_t digest[32];
    if (memcmp(h, MAGIC, 8) != 0) {
        snprintf(l->err, l->errcap, "%s: not an embedder model file (bad magic)", path);
        return -1;
    }
    if (rd32(h + 8) != FORMAT_VERSION || rd32(h + 12) != HEADER_BYTES) {
        snprintf(l->err, l->errcap,
                 "%s: format version %u, this build reads %u (re-run scripts/setup.sh)", path,
                 rd32(h + 8), FORMAT_VERSION);
        return -1;
    }
    uint64_t payload = rd64(h + 16);
    if (payload != l->file_len - HEADER_BYTES) {
        snprintf(l->err, l->errcap,
                 "%s: truncated or padded: header says %llu payload bytes, "
                 "file has %zu",
                 path, (unsigned long long)payload, l->file_len - HEADER_BYTES);
        return -1;
    }
    l->n_tensors = rd32(h + 24);
    if (l->n_tensors == 0 || l->n_tensors > MAX_TENSORS ||
        (uint64_t)l->n_tensors * TOC_ENTRY > payload) {
        snprintf(l->err, l->errcap, "%s: bad tensor count %u", path, l->n_tensors);
        return -1;
    }
    cg_sha256(h + HEADER_BYTES, (size_t)payload, digest);
    if (memcmp(digest, h + 32, 32) != 0) {
        snprintf(l->err, l->errcap, "%s: checksum mismatch (file corrupt; re-run scripts/setup.sh)",
                 path);
        return -1;
    }
    return 0;
}

static int load_vocab(loader *l, cg_embedder *e) {
    uint32_t dn[1];
    long any[1] = {-1};
    const int32_t *hp;
    long hp_d[1] = {8};
    if (!(hp = tensor(l, "hp", DT_I32, 1, hp_d, NULL)))
        return -1;
    e->max_tokens = hp[0];
    e->heads0 = hp[1];
    e->hd0 = hp[2];
    e->heads1 = hp[3];
    e->hd1 = hp[4];
    e->reserved = hp[5];
    if (e->max_tokens != CG_EMBED_MAX_TOKENS || e->heads0 <= 0 || e->heads1 <= 0 ||
        (long)e->heads0 * e->hd0 != CG_EMB_D0 || (long)e->heads1 * e->hd1 != CG_EMB_D) {
        snprintf(l->err, l->errcap, "hyper-parameters differ from the ones this build runs");
        return -1;
    }
    const float *hpf = vecf(l, "hpf", 4);
    if (!hpf)
        return -1;
    e->ln_eps = hpf[0];
    e->l2_eps = hpf[1];
    e->qscale0 = hpf[2];
    e->qscale1 = hpf[3];
    for (int i = 0; i < 4; i++)
        if (!isfinite(hpf[i])) {
            snprintf(l->err, l->errcap, "hyper-parameter %d is not finite", i);
            return -1;
        }

    if (!(e->pieces = tensor(l, "vocab.pieces", DT_U8, 1, any, dn)))
        return -1;
    uint32_t n_bytes = dn[0];
    if (!(e->piece_off = tensor(l, "vocab.offsets", DT_I32, 1, any, dn)))
        return -1;
    if (dn[0] < 2 || dn[0] > 1000000) {
        snprintf(l->err, l->errcap, "vocabulary size %u out of range", dn[0]);
        return -1;
    }
    e->n_vocab = (int)dn[0] - 1;
    long sd[1] = {e->n_vocab};
    if (!(e->scores = tensor(l, "vocab.scores", DT_F64, 1, sd, NULL)))
        return -1;
    if (e->piece_off[0] != 0 || (uint32_t)e->piece_off[e->n_vocab] != n_bytes) {
        snprintf(l->err, l->errcap, "vocabulary offsets do not cover the pieces");
        return -1;
    }
    for (int i = 0; i < e->n_vocab; i++)
        if (e->piece_off[i + 1] < e->piece_off[i] || !isfinite(e->scores[i])) {
            snprintf(l->err, l->errcap, "vocabulary entry %d is corrupt", i);
            return -1;
        }
    if (e->reserved < 1 || e->reserved >= e->n_vocab) {
        snprintf(l->err, l->errcap, "reserved symbol count %d out of range", e->reserved);
        return -1;
    }
    return 0;
}

/* Valid UTF-8 of 1..32 scalar values? */
static int utf8_ok(const uint8_t *p, size_t n) {
    size_t cps = 0;
    while (n > 0) {
        uint8_t b = p[0];
        size_t need = b < 0x80                 ? 0
                      : b >= 0xC2 && b <= 0xDF ? 1
                      : b >= 0xE0 && b <= 0xEF ? 2
                      : b >= 0xF0 && b <= 0xF4 ? 3
                                               : 4;
        if (need == 4 || n < need + 1)
            return 0;
        for (size_t k = 1; k <= need; k++)
            if ((p[k] & 0xC0) != 0x80)
                return 0;
        if ((b == 0xE0 && p[1] < 0xA0) || (b == 0xED && p[1] > 0x9F) ||
            (b == 0xF0 && p[1] < 0x90) || (b == 0xF4 && p[1] > 0x8F))
            return 0;
        p += need + 1;
        n -= need + 1;
        cps++;
    }
    return cps >= 1 && cps <= 32;
}

static int load_nfkc(loader *l, cg_embedder *e) {
    uint32_t dn[1];
    long any[1] = {-1};
    if (!(e->nfkc_cps = tensor(l, "nfkc.cps", DT_I32, 1, any, dn)))
        return -1;
    e->n_nfkc = (int)dn[0];
    long od[1] = {(long)e->n_nfkc + 1};
    if (!(e->nfkc_off = tensor(l, "nfkc.offsets", DT_I32, 1, od, NULL)) ||
        !(e->nfkc_bytes = tensor(l, "nfkc.bytes", DT_U8, 1, any, dn)))
        return -1;
    if (e->nfkc_off[0] != 0 || (uint32_t)e->nfkc_off[e->n_nfkc] != dn[0]) {
        snprintf(l->err, l->errcap, "NFKC table offsets do not cover its bytes");
        return -1;
    }
    for (int i = 0; i < e->n_nfkc; i++) {
        int32_t cp = e->nfkc_cps[i], a = e->nfkc_off[i], b = e->nfkc_off[i + 1];
        if (cp < 0x80 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ||
            (i > 0 && cp <= e->nfkc_cps[i - 1]) || b < a ||
            !utf8_ok(e->nfkc_bytes + a, (size_t)(b - a))) {
            snprintf(l->err, l->errcap, "NFKC table entry %d is corrupt", i);
            return -1;
        }
    }
    return 0;
}

static int load_weights(loader *l, cg_embedder *e) {
    uint32_t dims[2];
    long ed[2] = {-1, CG_EMB_D0};
    if (!(e->embed = tensor(l, "embed", DT_F32, 2, ed, dims)))
        return -1;
    e->embed_rows = (int)dims[0];
    if (e->embed_rows < e->n_vocab) {
        snprintf(l->err, l->errcap, "embedding table has %d rows for %d pieces", e->embed_rows,
                 e->n_vocab);
        return -1;
    }
    const float *inv = vecf(l, "timing.inv", CG_EMB_D0 / 2);
    if (!inv)
        return -1;
    if (!(e->ln0a_s = vecf(l, "l0.ln_att.scale", CG_EMB_D0)) ||
        !(e->ln0a_b = vecf(l, "l0.ln_att.bias", CG_EMB_D0)) ||
        !(e->ln0f_s = vecf(l, "l0.ln_ffn.scale", CG_EMB_D)) ||
        !(e->ln0f_b = vecf(l, "l0.ln_ffn.bias", CG_EMB_D)) ||
        !(e->ln1a_s = vecf(l, "l1.ln_att.scale", CG_EMB_D)) ||
        !(e->ln1a_b = vecf(l, "l1.ln_att.bias", CG_EMB_D)) ||
        !(e->ln1f_s = vecf(l, "l1.ln_ffn.scale", CG_EMB_D)) ||
        !(e->ln1f_b = vecf(l, "l1.ln_ffn.bias", CG_EMB_D)))
        return -1;
    if (mat(l, &e->qkv0, "l0.qkv.w", "l0.qkv.b", CG_EMB_D0, CG_EMB_QKV0) ||
        mat(l, &e->att0, "l0.att_out.w", "l0.att_out.b", CG_EMB_D0, CG_EMB_D) ||
        mat(l, &e->res0, "l0.res.w", "l0.res.b", CG_EMB_D0, CG_EMB_D) ||
        mat(l, &e->ffa0, "l0.ffn1.w", "l0.ffn1.b", CG_EMB_D, CG_EMB_FF) ||
        mat(l, &e->ffb0, "l0.ffn2.w", "l0.ffn2.b", CG_EMB_FF, CG_EMB_D) ||
        mat(l, &e->qkv1, "l1.qkv.w", "l1.qkv.b", CG_EMB_D, 3 * CG_EMB_D) ||
        mat(l, &e->att1, "l1.att_out.w", "l1.att_out.b", CG_EMB_D, CG_EMB_D) ||
        mat(l, &e->ffa1, "l1.ffn1.w", "l1.ffn1.b", CG_EMB_D, CG_EMB_FF) ||
        mat(l, &e->ffb1, "l1.ffn2.w", "l1.ffn2.b", CG_EMB_FF, CG_EMB_D) ||
        mat(l, &e->out, "out.w", "out.b", CG_EMB_D, CG_EMB_D))
        return -1;

    /* Timing signal as the graph computes it: float32 position * inv, then
     * sin | cos. */
    e->timing = malloc((size_t)e->max_tokens * CG_EMB_D0 * sizeof *e->timing);
    if (!e->timing) {
        snprintf(l->err, l->errcap, "out of memory");
        return -1;
    }
    for (int p = 0; p < e->max_tokens; p++)
        for (int i = 0; i < CG_EMB_D0 / 2; i++) {
            float x = (float)p * inv[i];
            e->timing[p * CG_EMB_D0 + i] = (float)sin((double)x);
            e->timing[p * CG_EMB_D0 + CG_EMB_D0 / 2 + i] = (float)cos((double)x);
        }
    return 0;
}

static int pack_all(cg_embedder *e, char *err, size_t errcap) {
    cg_emb_mat *ms[] = {&e->qkv0, &e->att0, &e->res0, &e->ffa0, &e->ffb0,
                        &e->qkv1, &e->att1, &e->ffa1, &e->ffb1, &e->out};
    int nr = cg_emb_isa_nr(e->isa);
    float *tmp = malloc((size_t)CG_EMB_D * CG_EMB_FF * sizeof *tmp);
    if (!tmp) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        /* The AMX kernels pay off on many rows; the two one-row products
         * of the pooled vector stay on the AVX-512 half-float kernels. */
        int fmt = e->wfmt;
        if (fmt == CG_EMB_W_BF16 && (ms[i] == &e->ffb1 || ms[i] == &e->out))
            fmt = CG_EMB_W_F16;
        cg_emb_pack((float *)ms[i]->w, ms[i]->K, ms[i]->N, nr, fmt, tmp);
        ms[i]->fmt = fmt;
    }
    free(tmp);
    return 0;
}

static const char *ISA_NAMES[] = {"auto", "generic", "avx2", "avx512", "amx"};

const char *cg_embed_isa_name(const cg_embedder *e) {
    return ISA_NAMES[e->isa];
}

const char *cg_embed_weights_name(const cg_embedder *e) {
    return e->wfmt == CG_EMB_W_BF16 ? "bf16" : e->wfmt == CG_EMB_W_F16 ? "f16" : "f32";
}

int cg_embed_dim(const cg_embedder *e) {
    (void)e;
    return CG_EMBED_DIM;
}

cg_embedder *cg_embed_open_opts(const char *path, const cg_embed_opts *opts, char *err,
                                size_t errcap) {
    static const cg_embed_opts defaults = {0};
    char dummy[8];
    if (!opts)
        opts = &defaults;
    cg_embed_isa isa = opts->isa;
    if (!err || errcap == 0) {
        err = dummy;
        errcap = sizeof dummy;
    }
    err[0] = '\0';
    if (isa == CG_EMBED_ISA_AUTO) {
        isa = cg_emb_isa_detect();
        if (isa == CG_EMBED_ISA_AMX && opts->fp32_weights) /* the same kernels; say so */
            isa = CG_EMBED_ISA_AVX512;
    } else if (isa < CG_EMBED_ISA_AUTO || isa > CG_EMBED_ISA_AMX || !cg_emb_isa_supported(isa)) {
        snprintf(err, errcap, "this CPU does not run the requested kernels");
        return NULL;
    }
    cg_embedder *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    e->isa = isa;
    e->wfmt = opts->fp32_weights        ? CG_EMB_W_F32
              : isa == CG_EMBED_ISA_AMX ? CG_EMB_W_BF16
              : cg_emb_isa_has_f16(isa) ? CG_EMB_W_F16
                                        : CG_EMB_W_F32;
    if (read_file(path, &e->blob, &e->blob_len, err, errcap) != 0)
        goto fail;
    loader l = {.file = e->blob, .file_len = e->blob_len, .err = err, .errcap = errcap};
    if (check_header(&l, path) != 0)
        goto fail;
    if (load_vocab(&l, e) != 0 || load_nfkc(&l, e) != 0 || load_weights(&l, e) != 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", err);
        snprintf(err, errcap, "%s: %s", path, msg);
        goto fail;
    }
    if (cg_emb_trie_build(e, err, errcap) != 0 || pack_all(e, err, errcap) != 0)
        goto fail;
    return e;
fail:
    cg_embed_close(e);
    return NULL;
}

cg_embedder *cg_embed_open(const char *path, char *err, size_t errcap) {
    return cg_embed_open_opts(path, NULL, err, errcap);
}

void cg_embed_close(cg_embedder *e) {
    if (!e)
        return;
    cg_emb_trie_free(&e->trie);
    free(e->utf16_len);
    free(e->timing);
    free(e->blob);
    free(e);
}
