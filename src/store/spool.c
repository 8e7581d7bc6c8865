/* spool: ring file of fixed-size records shared by one producer and one
 * consumer through a memory mapping (see spool.h). */
#include "store/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPOOL_MAGIC "CGSPOOL1"
#define SPOOL_VERSION 1u
#define HEADER_BYTES 4096u
#define SLOT_HEAD 16u /* u64 seq, u32 record length, u32 reserved */
#define SLOT_TAIL 8u  /* u64 seq again, at the end of the slot */

/* The file's first page. committed and head sit on cache lines of their
 * own: the consumer writes one, the producer the other. */
typedef struct spool_header {
    char magic[8];
    uint32_t version, slot_bytes, nslots, rec_size;
    uint64_t sig;
    char pad0[64 - 32];
    _Atomic uint64_t committed; /* consumer: last record durable elsewhere */
    char pad1[64 - 8];
    _Atomic uint64_t head; /* producer: last record published */
} spool_header;
/* the offsets tools read (tests/lib/harness.mjs waitSpool) */
_Static_assert(offsetof(spool_header, committed) == 64, "spool header layout");
_Static_assert(offsetof(spool_header, head) == 128, "spool header layout");

struct cg_spool {
    int fd;
    unsigned char *map;
    size_t map_len;
    spool_header *h;
    unsigned char *slots;
    uint32_t nslots, slot_bytes, rec_size;
    uint64_t head; /* producer's copy of h->head */
    int readable;  /* the layout matches: records may be read */
    char path[1024];
};

static uint32_t slot_bytes_for(uint32_t rec_size) {
    uint32_t need = SLOT_HEAD + rec_size + SLOT_TAIL, b = 64;
    while (b < need)
        b <<= 1; /* a power of two: a slot never straddles a page it need not */
    return b;
}

static unsigned char *slot_of(const cg_spool *s, uint64_t seq) {
    return s->slots + (size_t)((seq - 1) % s->nslots) * s->slot_bytes;
}

static cg_spool *spool_new(const char *path) {
    cg_spool *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->fd = -1;
    snprintf(s->path, sizeof s->path, "%s", path);
    return s;
}

static int spool_map(cg_spool *s, size_t len, char *err, size_t errlen) {
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, s->fd, 0);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "cannot map spool %s: %s", s->path, strerror(errno));
        return -1;
    }
    s->map = m;
    s->map_len = len;
    s->h = (spool_header *)s->map;
    s->slots = s->map + HEADER_BYTES;
    return 0;
}

cg_spool *cg_spool_create(const char *path, uint32_t nslots, uint32_t rec_size, uint64_t sig,
                          char *err, size_t errlen) {
    cg_spool *s = spool_new(path);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->nslots = nslots ? nslots : 1;
    s->rec_size = rec_size;
    s->slot_bytes = slot_bytes_for(rec_size);
    s->readable = 1;
    size_t len = HEADER_BYTES + (size_t)s->nslots * s->slot_bytes;
    int rc;
    s->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (s->fd < 0) {
        snprintf(err, errlen, "cannot create spool %s: %s", path, strerror(errno));
        goto fail;
    }
    if (flock(s->fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "cannot lock spool %s: %s", path, strerror(errno));
        goto fail;
    }
    /* every block allocated now: a store into the mapping can then never
     * fault for want of disk space (SIGBUS) */
    rc = posix_fallocate(s->fd, 0, (off_t)len);
    if (rc != 0) {
        snprintf(err, errlen, "cannot allocate %zu bytes for spool %s: %s", len, path,
                 strerror(rc));
        goto fail;
    }
    if (spool_map(s, len, err, errlen) != 0)
        goto fail;
    memcpy(s->h->magic, SPOOL_MAGIC, 8);
    s->h->version = SPOOL_VERSION;
    s->h->slot_bytes = s->slot_bytes;
    s->h->nslots = s->nslots;
    s->h->rec_size = rec_size;
    s->h->sig = sig;
    atomic_store_explicit(&s->h->committed, 0, memory_order_relaxed);
    atomic_store_explicit(&s->h->head, 0, memory_order_relaxed);
    return s;
fail:
    cg_spool_close(s, s->fd >= 0);
    return NULL;
}

cg_spool *cg_spool_open(const char *path, uint32_t rec_size, uint64_t sig, int *busy,
                        uint64_t *stale, char *err, size_t errlen) {
    *busy = 0;
    *stale = 0;
    cg_spool *s = spool_new(path);
    struct stat st;
    spool_header h;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->fd = open(path, O_RDWR | O_CLOEXEC);
    if (s->fd < 0) {
        snprintf(err, errlen, "cannot open spool %s: %s", path, strerror(errno));
        goto fail;
    }
    if (flock(s->fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            *busy = 1;
        else
            snprintf(err, errlen, "cannot lock spool %s: %s", path, strerror(errno));
        goto fail;
    }
    if (fstat(s->fd, &st) != 0 || st.st_size < (off_t)HEADER_BYTES ||
        pread(s->fd, &h, sizeof h, 0) != (ssize_t)sizeof h || memcmp(h.magic, SPOOL_MAGIC, 8) ||
        h.version != SPOOL_VERSION || h.nslots == 0 || h.slot_bytes < SLOT_HEAD + SLOT_TAIL ||
        h.rec_size > h.slot_bytes - SLOT_HEAD - SLOT_TAIL ||
        (off_t)(HEADER_BYTES + (uint64_t)h.nslots * h.slot_bytes) != st.st_size) {
        snprintf(err, errlen, "%s is not a costgate spool file (or it is damaged)", path);
        goto fail;
    }
    s->nslots = h.nslots;
    s->slot_bytes = h.slot_bytes;
    s->rec_size = h.rec_size;
    if (spool_map(s, (size_t)st.st_size, err, errlen) != 0)
        goto fail;
    s->head = atomic_load_explicit(&s->h->head, memory_order_relaxed);
    if (h.rec_size != rec_size || h.sig != sig) {
        /* written by a build with another row layout: readable only if there
         * is nothing left to read */
        uint64_t c = cg_spool_committed(s);
        s->readable = 1; /* headers and trailers are layout-free */
        while (cg_spool_get(s, c + *stale + 1))
            (*stale)++;
        s->readable = 0;
        if (*stale) {
            snprintf(err, errlen,
                     "%s holds %llu ledger rows written by a build with another row layout; "
                     "start that build once on this ledger to move them into it",
                     path, (unsigned long long)*stale);
            goto fail;
        }
        return s;
    }
    s->readable = 1;
    return s;
fail:
    cg_spool_close(s, 0);
    return NULL;
}

int cg_spool_put(cg_spool *s, const void *rec) {
    return cg_spool_put_len(s, rec, s->rec_size);
}

int cg_spool_put_len(cg_spool *s, const void *rec, uint32_t len) {
    uint64_t n = s->head + 1;
    if (len > s->rec_size ||
        n - atomic_load_explicit(&s->h->committed, memory_order_acquire) > s->nslots)
        return -1;
    unsigned char *slot = slot_of(s, n);
    memcpy(slot + 8, &len, sizeof len);
    memcpy(slot + SLOT_HEAD, rec, len);
    memcpy(slot + s->slot_bytes - SLOT_TAIL, &n, sizeof n);
    atomic_store_explicit((_Atomic uint64_t *)(void *)slot, n, memory_order_release);
    atomic_store_explicit(&s->h->head, n, memory_order_relaxed);
    s->head = n;
    return 0;
}

const void *cg_spool_get(const cg_spool *s, uint64_t seq) {
    return cg_spool_get_len(s, seq, NULL);
}

const void *cg_spool_get_len(const cg_spool *s, uint64_t seq, uint32_t *lenp) {
    if (!s->readable || seq == 0)
        return NULL;
    const unsigned char *slot = slot_of(s, seq);
    if (atomic_load_explicit((_Atomic uint64_t *)(void *)slot, memory_order_acquire) != seq)
        return NULL;
    uint64_t tail;
    uint32_t len;
    memcpy(&tail, slot + s->slot_bytes - SLOT_TAIL, sizeof tail);
    memcpy(&len, slot + 8, sizeof len);
    /* a slot torn by a power loss (header written, the rest not) */
    if (tail != seq || len > s->rec_size)
        return NULL;
    if (lenp)
        *lenp = len;
    return slot + SLOT_HEAD;
}

uint64_t cg_spool_committed(const cg_spool *s) {
    return atomic_load_explicit(&s->h->committed, memory_order_acquire);
}

void cg_spool_set_committed(cg_spool *s, uint64_t seq) {
    atomic_store_explicit(&s->h->committed, seq, memory_order_release);
}

uint64_t cg_spool_pending(const cg_spool *s) {
    uint64_t h = atomic_load_explicit(&s->h->head, memory_order_acquire);
    uint64_t c = cg_spool_committed(s);
    return h > c ? h - c : 0;
}

void cg_spool_close(cg_spool *s, int remove_file) {
    if (!s)
        return;
    if (s->map)
        munmap(s->map, s->map_len);
    if (remove_file && s->path[0])
        unlink(s->path); /* before the lock goes: nobody recovers a removed ring */
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}
