/* spool: a ring file of fixed-size records, written through a shared memory
 * mapping by one producer thread and read by one consumer thread.
 *
 * Owns: the file format (a 4 KiB header page, then nslots slots), the
 * publication protocol and the file's lifetime. The ledger uses one ring per
 * event-loop thread for rows whose response is about to be released: a
 * record is in the kernel's page cache once cg_spool_put returns, so it
 * survives a crash (kill -9) of the process, and the consumer moves it into
 * SQLite later, in large transactions. Nothing here calls msync: a power
 * loss may lose the records the consumer had not committed yet, as SQLite's
 * WAL with synchronous=NORMAL may lose its last commits.
 *
 * Protocol: record number n (1, 2, ...) goes to slot (n - 1) % nslots. The
 * producer writes the record and a trailer (n) and then publishes the
 * slot's header (n) with a release store; the consumer reads record n only
 * after an acquire load of that header saw n, and checks the trailer. The
 * consumer stores in the file header the last record it has made durable
 * elsewhere ("committed"); the producer never overwrites a record above it,
 * so a full ring refuses new records (cg_spool_put returns -1) instead of
 * losing one. The file is fully allocated when created (no SIGBUS on a full
 * disk later) and locked with flock() while a process uses it, so recovery
 * never takes a live process's ring.
 */
#ifndef CG_STORE_SPOOL_H
#define CG_STORE_SPOOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct cg_spool cg_spool;

/* Creates (replacing) the ring file at path for records of rec_size bytes
 * tagged with the layout signature sig. NULL with a message in err on
 * failure (e.g. the disk has no room for nslots records). */
cg_spool *cg_spool_create(const char *path, uint32_t nslots, uint32_t rec_size, uint64_t sig,
                          char *err, size_t errlen);

/* Opens a ring file left behind by an earlier process, for recovery. NULL
 * with *busy = 1 when a live process holds it; NULL with a message in err
 * when it is not a ring file, or was written for another record layout and
 * still holds records that were never committed (*stale is set to their
 * number). A ring of another layout with nothing uncommitted opens fine:
 * cg_spool_next() returns NULL at once. */
cg_spool *cg_spool_open(const char *path, uint32_t rec_size, uint64_t sig, int *busy,
                        uint64_t *stale, char *err, size_t errlen);

/* Producer: copies rec into the next slot and publishes it. 0, or -1 when
 * the ring is full (every slot holds an uncommitted record). cg_spool_put
 * writes rec_size bytes; cg_spool_put_len a record of len <= rec_size bytes
 * (-1 when longer), so a compact encoding touches only the cache lines it
 * needs. */
int cg_spool_put(cg_spool *s, const void *rec);
int cg_spool_put_len(cg_spool *s, const void *rec, uint32_t len);

/* Consumer: record number seq if it has been published (its header and
 * trailer say seq), else NULL; *len (when len is not NULL) is its length.
 * The pointer stays valid until seq is marked committed. */
const void *cg_spool_get(const cg_spool *s, uint64_t seq);
const void *cg_spool_get_len(const cg_spool *s, uint64_t seq, uint32_t *len);

/* Consumer: the last record made durable elsewhere, and setting it (which
 * frees the slots up to seq for the producer). */
uint64_t cg_spool_committed(const cg_spool *s);
void cg_spool_set_committed(cg_spool *s, uint64_t seq);

/* Records published and not yet committed (either thread; approximate while
 * the producer runs). */
uint64_t cg_spool_pending(const cg_spool *s);

/* Unmaps and unlocks; removes the file when remove_file is set. */
void cg_spool_close(cg_spool *s, int remove_file);

#endif
