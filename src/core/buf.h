/* buf: capped growable byte buffers.
 *
 * Owns: cg_buf, a heap buffer that grows on demand but never past a cap set
 * at init. Every append reports failure instead of growing past the cap, so
 * untrusted input can never make the process allocate without bound. The
 * data is always NUL-terminated (the terminator is not counted in len).
 */
#ifndef CG_CORE_BUF_H
#define CG_CORE_BUF_H

#include <stddef.h>
#include <stdarg.h>

typedef struct cg_buf {
    char *data;
    size_t len;
    size_t cap; /* allocated bytes, excluding the NUL */
    size_t max; /* hard cap on len */
} cg_buf;

void cg_buf_init(cg_buf *b, size_t max);
void cg_buf_free(cg_buf *b);
void cg_buf_reset(cg_buf *b);
/* 0 on success, -1 when the cap would be exceeded or memory ran out
 * (the buffer is left unchanged). */
int cg_buf_append(cg_buf *b, const void *p, size_t n);
int cg_buf_puts(cg_buf *b, const char *s);
int cg_buf_printf(cg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cg_buf_vprintf(cg_buf *b, const char *fmt, va_list ap);
/* Appends the whole file at path (read in 64 KiB chunks). 0 on success;
 * -1 when it cannot be opened or read, or the cap would be exceeded (what
 * was read so far stays in b). */
int cg_buf_read_file(cg_buf *b, const char *path);
/* Removes the first n bytes. */
void cg_buf_consume(cg_buf *b, size_t n);
/* Appends s as a JSON string literal (with quotes). */
int cg_buf_json_str(cg_buf *b, const char *s, size_t n);

/* Copies the string src (NULL = "") into dst[cap], cut to cap - 1 bytes and
 * always NUL-terminated; returns the length copied. For the request path,
 * where snprintf("%s") costs ~1k instructions a call. */
size_t cg_strlcpy(char *dst, const char *src, size_t cap);

#endif
