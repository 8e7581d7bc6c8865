/* sse: incremental Server-Sent Events parser (see sse.h). */
#include "http/sse.h"

#include <string.h>

#include "core/find.h"

void cg_sse_init(cg_sse *s, size_t max_event) {
    cg_buf_init(&s->pending, max_event);
    cg_buf_init(&s->data, max_event);
    s->event[0] = '\0';
    s->scan = 0;
}

void cg_sse_free(cg_sse *s) {
    cg_buf_free(&s->pending);
    cg_buf_free(&s->data);
}

size_t cg_sse_pending(const cg_sse *s) {
    return s->pending.len;
}

/* Finds the end of the first event (just past its blank line) in p[0..n),
 * starting the search at `from`. Returns 0 when none yet. */
static size_t find_boundary(const char *p, size_t n, size_t from) {
    /* a blank line is a line terminator directly after another one. The
     * previous scan may have stopped inside an unfinished one ("\r", "\n\r",
     * "\r\n\r" at the end), so resume at most 3 bytes back, where its first
     * terminator starts. */
    size_t i = from > 3 ? from - 3 : 0;
    for (; i < n; i++) {
        i += cg_find_eol(p + i, n - i);
        if (i >= n)
            return 0;
        char c = p[i];
        size_t eol = i + 1;
        if (c == '\r' && eol < n && p[eol] == '\n')
            eol++;
        else if (c == '\r' && eol == n)
            return 0; /* CR at the end: a LF may follow */
        if (eol >= n)
            return 0;
        char d = p[eol];
        if (d == '\n')
            return eol + 1;
        if (d == '\r') {
            if (eol + 1 < n && p[eol + 1] == '\n')
                return eol + 2;
            if (eol + 1 == n)
                return 0;
            return eol + 1;
        }
        i = eol - 1;
    }
    return 0;
}

static int emit(cg_sse *s, const char *p, size_t end, cg_sse_cb cb, void *arg) {
    size_t i = 0;
    cg_buf_reset(&s->data);
    s->event[0] = '\0';
    int have_data = 0;
    while (i < end) {
        size_t ls = i;
        i += cg_find_eol(p + i, end - i);
        size_t le = i;
        if (i < end && p[i] == '\r') {
            i++;
            if (i < end && p[i] == '\n')
                i++;
        } else if (i < end && p[i] == '\n') {
            i++;
        }
        if (le == ls || p[ls] == ':')
            continue;
        const char *colon = memchr(p + ls, ':', le - ls);
        size_t flen = colon ? (size_t)(colon - (p + ls)) : le - ls;
        const char *val = colon ? colon + 1 : p + le;
        if (colon && val < p + le && *val == ' ')
            val++;
        size_t vlen = (size_t)((p + le) - val);
        if (flen == 4 && memcmp(p + ls, "data", 4) == 0) {
            if (have_data && cg_buf_append(&s->data, "\n", 1))
                return -1;
            if (cg_buf_append(&s->data, val, vlen))
                return -1;
            have_data = 1;
        } else if (flen == 5 && memcmp(p + ls, "event", 5) == 0) {
            size_t n = vlen < sizeof s->event - 1 ? vlen : sizeof s->event - 1;
            memcpy(s->event, val, n);
            s->event[n] = '\0';
        }
    }
    cg_sse_event ev = {
        .raw = p,
        .raw_len = end,
        .event = s->event,
        .event_len = strlen(s->event),
        .data = s->data.data ? s->data.data : "",
        .data_len = s->data.len,
    };
    return cb(arg, &ev);
}

int cg_sse_feed(cg_sse *s, const char *p, size_t n, cg_sse_cb cb, void *arg) {
    if (cg_buf_append(&s->pending, p, n))
        return -1;
    /* events are emitted in place; the consumed prefix is dropped once at
     * the end, so a chunk holding many events costs linear time */
    size_t off = 0;
    int rc = 0;
    for (;;) {
        size_t end = find_boundary(s->pending.data + off, s->pending.len - off, s->scan);
        if (end == 0) {
            s->scan = s->pending.len - off;
            break;
        }
        rc = emit(s, s->pending.data + off, end, cb, arg);
        off += end;
        s->scan = 0;
        if (rc)
            break;
    }
    cg_buf_consume(&s->pending, off);
    return rc;
}
