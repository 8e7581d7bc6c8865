/* coalesce: the in-flight table of identical misses (see coalesce.h). */
#include "cache/coalesce.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { W_WAITING = 1, W_CANCELLED, W_NOTIFIED };

struct cg_coalesce_slot {
    uint8_t key[32];
    cg_coalesce_waiter *waiters;
    cg_coalesce_slot *next;
};

struct cg_coalesce {
    pthread_mutex_t mu;
    cg_coalesce_slot *slots; /* few at a time: a list is enough */
    size_t n;
};

cg_coalesce *cg_coalesce_new(void) {
    cg_coalesce *co = calloc(1, sizeof *co);
    if (co)
        pthread_mutex_init(&co->mu, NULL);
    return co;
}

void cg_coalesce_free(cg_coalesce *co) {
    if (!co)
        return;
    while (co->slots) {
        cg_coalesce_slot *s = co->slots;
        co->slots = s->next;
        free(s);
    }
    pthread_mutex_destroy(&co->mu);
    free(co);
}

cg_coalesce_slot *cg_coalesce_join(cg_coalesce *co, const uint8_t key[32], cg_coalesce_waiter *w,
                                   int *err) {
    *err = 0;
    pthread_mutex_lock(&co->mu);
    cg_coalesce_slot *s = co->slots;
    while (s && memcmp(s->key, key, 32) != 0)
        s = s->next;
    if (s) {
        w->state = W_WAITING;
        w->slot = s;
        w->ok = 0;
        w->next = s->waiters;
        s->waiters = w;
        pthread_mutex_unlock(&co->mu);
        return NULL;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        pthread_mutex_unlock(&co->mu);
        *err = 1;
        return NULL;
    }
    memcpy(s->key, key, 32);
    s->next = co->slots;
    co->slots = s;
    co->n++;
    pthread_mutex_unlock(&co->mu);
    return s;
}

void cg_coalesce_done(cg_coalesce *co, cg_coalesce_slot *slot, int ok) {
    pthread_mutex_lock(&co->mu);
    cg_coalesce_slot **p = &co->slots;
    while (*p && *p != slot)
        p = &(*p)->next;
    if (*p) {
        *p = slot->next;
        co->n--;
    }
    cg_coalesce_waiter *list = slot->waiters;
    for (cg_coalesce_waiter *w = list; w; w = w->next) {
        w->state = W_NOTIFIED;
        w->ok = ok;
        w->slot = NULL;
    }
    pthread_mutex_unlock(&co->mu);
    free(slot);
    /* next is read before notify: the waiter may be gone right after it */
    while (list) {
        cg_coalesce_waiter *next = list->next;
        list->notify(list);
        list = next;
    }
}

int cg_coalesce_cancel(cg_coalesce *co, cg_coalesce_waiter *w) {
    pthread_mutex_lock(&co->mu);
    int removed = 0;
    if (w->state == W_WAITING && w->slot) {
        cg_coalesce_waiter **p = &w->slot->waiters;
        while (*p && *p != w)
            p = &(*p)->next;
        if (*p)
            *p = w->next;
        w->state = W_CANCELLED;
        w->slot = NULL;
        removed = 1;
    }
    pthread_mutex_unlock(&co->mu);
    return removed;
}

size_t cg_coalesce_inflight(cg_coalesce *co) {
    pthread_mutex_lock(&co->mu);
    size_t n = co->n;
    pthread_mutex_unlock(&co->mu);
    return n;
}
