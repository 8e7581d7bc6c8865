/* class_memo: per-thread memo of prompt classifications (see class_memo.h). */
#include "route/class_memo.h"

#include <string.h>

typedef struct slot {
    uint64_t hash;
    uint64_t owner;
    const void *learned;
    int64_t max_output_tokens;
    size_t user_full_len;
    uint32_t user_len, system_len, header_len;
    int turns;
    int used;
    cg_class_memo_val val;
    char text[CG_CLASS_MEMO_TEXT_MAX]; /* user, then system, then header intent */
} slot;

static _Thread_local slot memo[CG_CLASS_MEMO_SLOTS];

static uint64_t mix(uint64_t h, uint64_t w) {
    h = (h ^ w) * UINT64_C(0x9FB21C651E98DF25);
    return h ^ (h >> 29);
}

/* 8 bytes at a time, the last 8 overlapping the word before (lengths are
 * mixed in by the caller, so that loses nothing). */
static uint64_t hash_bytes(uint64_t h, const char *p, size_t n) {
    uint64_t w = 0;
    if (n < 8) {
        for (size_t i = 0; i < n; i++)
            w |= (uint64_t)(unsigned char)p[i] << (8 * i);
        return mix(h, w);
    }
    const char *end = p + n - 8;
    for (; p < end; p += 8) {
        memcpy(&w, p, 8);
        h = mix(h, w);
    }
    memcpy(&w, end, 8);
    return mix(h, w);
}

/* The key's parts with NULL as empty (the classifier reads a NULL or empty
 * system text and header intent alike). */
static void parts(const cg_class_memo_key *k, size_t *sl, size_t *hl) {
    *sl = k->system ? k->system_len : 0;
    *hl = k->header_intent ? strlen(k->header_intent) : 0;
}

/* Whether a slot can hold the key's text. */
static int fits(const cg_class_memo_key *k, size_t sl, size_t hl) {
    return k->user_len <= CG_CLASS_MEMO_TEXT_MAX && sl <= CG_CLASS_MEMO_TEXT_MAX &&
           hl <= CG_CLASS_MEMO_TEXT_MAX && k->user_len + sl + hl <= CG_CLASS_MEMO_TEXT_MAX;
}

int cg_class_memo_get(const cg_class_memo_key *k, uint64_t *hash, cg_class_memo_val *out) {
    size_t sl, hl;
    parts(k, &sl, &hl);
    *hash = 0;
    if (!fits(k, sl, hl)) /* never kept: no hash of a long text */
        return 0;
    uint64_t h = mix(k->owner, (uint64_t)(uintptr_t)k->learned);
    h = mix(h, ((uint64_t)k->user_len << 32) ^ sl ^ ((uint64_t)hl << 20));
    h = mix(h, (uint64_t)k->max_output_tokens ^ ((uint64_t)(uint32_t)k->turns << 40) ^
                   ((uint64_t)k->user_full_len << 16));
    h = hash_bytes(h, k->user, k->user_len);
    if (sl)
        h = hash_bytes(h, k->system, sl);
    if (hl)
        h = hash_bytes(h, k->header_intent, hl);
    *hash = h;
    const slot *s = &memo[(h ^ (h >> 32)) & (CG_CLASS_MEMO_SLOTS - 1)];
    if (!s->used || s->hash != h || s->owner != k->owner || s->learned != k->learned ||
        s->user_len != k->user_len || s->system_len != sl || s->header_len != hl ||
        s->max_output_tokens != k->max_output_tokens || s->turns != k->turns ||
        s->user_full_len != k->user_full_len)
        return 0;
    if ((k->user_len && memcmp(s->text, k->user, k->user_len) != 0) ||
        (sl && memcmp(s->text + k->user_len, k->system, sl) != 0) ||
        (hl && memcmp(s->text + k->user_len + sl, k->header_intent, hl) != 0))
        return 0;
    *out = s->val;
    return 1;
}

void cg_class_memo_put(const cg_class_memo_key *k, uint64_t hash, const cg_class_memo_val *v) {
    size_t sl, hl;
    parts(k, &sl, &hl);
    if (!fits(k, sl, hl))
        return;
    slot *s = &memo[(hash ^ (hash >> 32)) & (CG_CLASS_MEMO_SLOTS - 1)];
    s->used = 1;
    s->hash = hash;
    s->owner = k->owner;
    s->learned = k->learned;
    s->max_output_tokens = k->max_output_tokens;
    s->user_full_len = k->user_full_len;
    s->turns = k->turns;
    s->user_len = (uint32_t)k->user_len;
    s->system_len = (uint32_t)sl;
    s->header_len = (uint32_t)hl;
    if (k->user_len)
        memcpy(s->text, k->user, k->user_len);
    if (sl)
        memcpy(s->text + k->user_len, k->system, sl);
    if (hl)
        memcpy(s->text + k->user_len + sl, k->header_intent, hl);
    s->val = *v;
}

void cg_class_memo_clear(void) {
    for (size_t i = 0; i < CG_CLASS_MEMO_SLOTS; i++)
        memo[i].used = 0;
}
