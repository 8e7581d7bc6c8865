/* chat: OpenAI chat prompt-token prediction and image token rules.
 *
 * Owns: the cookbook message/tool constants, the per-model image constants
 * (tile base/tile tokens or patch multipliers, from OpenAI's vision guide),
 * and the image header parsers. See chat.h for the rules.
 */
#include "tokenize/chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DESC 16384                 /* longer tool lines are counted in parts */
#define IMAGE_SNIFF_B64 (512u * 1024u) /* base64 chars decoded to find a size */

/* ---- image size sniffing ---- */

static uint32_t be16(const uint8_t *p) {
    return ((uint32_t)p[0] << 8) | p[1];
}
static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static uint32_t le16(const uint8_t *p) {
    return ((uint32_t)p[1] << 8) | p[0];
}
static uint32_t le24(const uint8_t *p) {
    return ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

int cg_image_size(const uint8_t *p, size_t n, int64_t *w, int64_t *h) {
    if (n >= 24 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(p + 12, "IHDR", 4) == 0) {
        *w = be32(p + 16);
        *h = be32(p + 20);
        return *w > 0 && *h > 0 ? 0 : -1;
    }
    if (n >= 10 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0)) {
        *w = le16(p + 6);
        *h = le16(p + 8);
        return *w > 0 && *h > 0 ? 0 : -1;
    }
    if (n >= 30 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0) {
        if (memcmp(p + 12, "VP8 ", 4) == 0) {
            *w = le16(p + 26) & 0x3FFF;
            *h = le16(p + 28) & 0x3FFF;
        } else if (memcmp(p + 12, "VP8L", 4) == 0) {
            *w = 1 + (p[21] | ((p[22] & 0x3F) << 8));
            *h = 1 + ((p[22] >> 6) | (p[23] << 2) | ((p[24] & 0x0F) << 10));
        } else if (memcmp(p + 12, "VP8X", 4) == 0) {
            *w = 1 + (int64_t)le24(p + 24);
            *h = 1 + (int64_t)le24(p + 27);
        } else {
            return -1;
        }
        return *w > 0 && *h > 0 ? 0 : -1;
    }
    if (n >= 4 && p[0] == 0xFF && p[1] == 0xD8) {
        size_t i = 2;
        while (i + 9 < n) {
            if (p[i] != 0xFF) {
                i++;
                continue;
            }
            uint8_t m = p[i + 1];
            if (m == 0xFF) {
                i++;
                continue;
            }
            if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {
                i += 2;
                continue;
            }
            uint32_t len = be16(p + i + 2);
            if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
                *h = be16(p + i + 5);
                *w = be16(p + i + 7);
                return *w > 0 && *h > 0 ? 0 : -1;
            }
            if (len < 2)
                return -1;
            i += 2 + len;
        }
    }
    return -1;
}

static int b64v(unsigned char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int cg_image_size_base64(const char *b64, size_t n, int64_t *w, int64_t *h) {
    const char *comma = memchr(b64, ',', n < 256 ? n : 256);
    if (n > 5 && strncmp(b64, "data:", 5) == 0) {
        if (!comma)
            return -1;
        n -= (size_t)(comma + 1 - b64);
        b64 = comma + 1;
    }
    if (n > IMAGE_SNIFF_B64)
        n = IMAGE_SNIFF_B64;
    uint8_t *buf = malloc(n / 4 * 3 + 3);
    if (!buf)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64v((unsigned char)b64[i]);
        if (v < 0)
            continue; /* padding, whitespace */
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
        }
    }
    int rc = cg_image_size(buf, o, w, h);
    free(buf);
    return rc;
}

/* ---- image token rules ---- */

typedef struct image_rule {
    const char *prefix;
    int patch;           /* 1: 32px patches, 0: 512px tiles */
    int64_t base, tile;  /* tiles */
    int64_t mult_permil; /* patches: tokens per patch x 1000 */
} image_rule;

/* First match wins (minis before their family). */
static const image_rule IMAGE_RULES[] = {
    {"gpt-4o-mini", 0, 2833, 5667, 0},
    {"gpt-4.1-mini", 1, 0, 0, 1620},
    {"gpt-4.1-nano", 1, 0, 0, 2460},
    {"gpt-5-mini", 1, 0, 0, 1620},
    {"gpt-5-nano", 1, 0, 0, 2460},
    {"o4-mini", 1, 0, 0, 1720},
    {"gpt-5", 0, 70, 140, 0},
    {"o1", 0, 75, 150, 0},
    {"o3", 0, 75, 150, 0},
    {"computer-use-preview", 0, 65, 129, 0},
    {"gpt-4o", 0, 85, 170, 0},
    {"chatgpt-4o", 0, 85, 170, 0},
    {"gpt-4.1", 0, 85, 170, 0},
    {"gpt-4.5", 0, 85, 170, 0},
};
static const image_rule DEFAULT_IMAGE_RULE = {"", 0, 85, 170, 0};

static const char *base_model(const char *model) {
    if (!model)
        return "";
    const char *slash = strrchr(model, '/');
    const char *m = slash ? slash + 1 : model;
    return strncmp(m, "ft:", 3) == 0 ? m + 3 : m;
}

static const image_rule *image_rule_for(const char *model) {
    const char *m = base_model(model);
    for (size_t i = 0; i < sizeof IMAGE_RULES / sizeof IMAGE_RULES[0]; i++) {
        if (strncmp(m, IMAGE_RULES[i].prefix, strlen(IMAGE_RULES[i].prefix)) == 0)
            return &IMAGE_RULES[i];
    }
    return &DEFAULT_IMAGE_RULE;
}

static int64_t ceil_div(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}

static int64_t isqrt(uint64_t x) {
    uint64_t r = 0, bit = 1ull << 62;
    while (bit > x)
        bit >>= 2;
    while (bit) {
        if (x >= r + bit) {
            x -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return (int64_t)r;
}

#define MAX_PATCHES 1536

static int64_t patches_for(int64_t w, int64_t h) {
    int64_t pw = ceil_div(w, 32), ph = ceil_div(h, 32);
    if (pw * ph <= MAX_PATCHES)
        return pw * ph;
    /* shrink factor r = sqrt(32*32*1536 / (w*h)), in millionths */
    uint64_t r =
        (uint64_t)isqrt((uint64_t)(1024 * MAX_PATCHES) * 1000000000000ull / (uint64_t)(w * h));
    int64_t fw = (int64_t)((uint64_t)w * r / 32000000u),
            fh = (int64_t)((uint64_t)h * r / 32000000u);
    if (fw < 1)
        fw = 1;
    if (fh < 1)
        fh = 1;
    /* scale again so the tighter side lands on a whole patch */
    if (fw * h <= fh * w) {
        pw = fw;
        ph = ceil_div(fw * h, w);
    } else {
        ph = fh;
        pw = ceil_div(fh * w, h);
    }
    return pw * ph < MAX_PATCHES ? pw * ph : MAX_PATCHES;
}

int64_t cg_openai_image_tokens(const char *model, int64_t w, int64_t h, const char *detail) {
    const image_rule *r = image_rule_for(model);
    int low = detail && strcmp(detail, "low") == 0;
    int unknown = w <= 0 || h <= 0 || w > 100000 || h > 100000;
    if (r->patch) {
        int64_t patches = unknown ? MAX_PATCHES : patches_for(w, h);
        if (low && patches > 64 && !unknown)
            patches = patches_for(512 * w / (w > h ? w : h), 512 * h / (w > h ? w : h));
        else if (low)
            patches = patches < 256 ? patches : 256; /* 512x512 at most */
        return ceil_div(patches * r->mult_permil, 1000);
    }
    if (low)
        return r->base;
    int64_t tiles;
    if (unknown) {
        tiles = 2 * 4; /* 768 x 2048 is the largest grid the rule allows */
    } else {
        if (w > 2048 || h > 2048) {
            if (w >= h) {
                h = h * 2048 / w;
                w = 2048;
            } else {
                w = w * 2048 / h;
                h = 2048;
            }
        }
        if (w > 768 && h > 768) {
            if (w <= h) {
                h = h * 768 / w;
                w = 768;
            } else {
                w = w * 768 / h;
                h = 768;
            }
        }
        tiles = ceil_div(w, 512) * ceil_div(h, 512);
    }
    return r->base + r->tile * tiles;
}

int64_t cg_claude_image_tokens(int64_t w, int64_t h) {
    if (w <= 0 || h <= 0 || w > 100000 || h > 100000)
        return 1600;
    int64_t l = w > h ? w : h;
    if (l > 1568) {
        w = w * 1568 / l;
        h = h * 1568 / l;
    }
    int64_t t = ceil_div(w * h, 750);
    return t < 1600 ? t : 1600;
}

/* ---- chat counting ---- */

typedef struct tool_consts {
    int func_init, prop_init, prop_key, enum_init, enum_item, func_end;
} tool_consts;

static int64_t count_str(const cg_tokenizer *t, const char *s, size_t n) {
    int64_t c = cg_tok_count(t, s, n, 0);
    return c < 0 ? 0 : c;
}

static int64_t count_json_text(const cg_tokenizer *t, const json_t *v) {
    if (json_is_string(v))
        return count_str(t, json_string_value(v), json_string_length(v));
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    int64_t c = s ? count_str(t, s, strlen(s)) : 0;
    free(s);
    return c;
}

/* "prefix:rest" with rest's trailing '.' dropped (the cookbook's lines). */
static int64_t count_line(const cg_tokenizer *t, const char *a, const char *b, const char *c) {
    char buf[MAX_DESC];
    size_t clen = c ? strlen(c) : 0;
    if (clen && c[clen - 1] == '.')
        clen--;
    int n;
    if (b)
        n = snprintf(buf, sizeof buf, "%s:%s:%.*s", a, b, (int)clen, c ? c : "");
    else
        n = snprintf(buf, sizeof buf, "%s:%.*s", a, (int)clen, c ? c : "");
    if (n < 0)
        return 0;
    if ((size_t)n >= sizeof buf) /* longer than the cap: count the parts */
        return count_str(t, a, strlen(a)) + (b ? count_str(t, b, strlen(b)) : 0) +
               count_str(t, c ? c : "", clen) + 2;
    return count_str(t, buf, (size_t)n);
}

static int64_t count_function(const cg_tokenizer *t, const json_t *fn, const tool_consts *k,
                              int *approx) {
    const char *name = json_string_value(json_object_get(fn, "name"));
    const char *desc = json_string_value(json_object_get(fn, "description"));
    int64_t c = k->func_init + count_line(t, name ? name : "", NULL, desc ? desc : "");
    const json_t *props = json_object_get(json_object_get(fn, "parameters"), "properties");
    if (json_is_object(props) && json_object_size(props) > 0) {
        const char *key;
        json_t *p;
        c += k->prop_init;
        json_object_foreach((json_t *)props, key, p) {
            c += k->prop_key;
            const json_t *type = json_object_get(p, "type");
            const char *ptype = json_string_value(type);
            char *dumped = NULL;
            if (type && !ptype) {
                dumped = json_dumps(type, JSON_COMPACT | JSON_ENCODE_ANY);
                ptype = dumped;
                *approx = 1;
            }
            const char *pdesc = json_string_value(json_object_get(p, "description"));
            const json_t *en = json_object_get(p, "enum");
            if (json_is_array(en)) {
                size_t i;
                json_t *item;
                c += k->enum_init;
                json_array_foreach(en, i, item) {
                    c += k->enum_item + count_json_text(t, item);
                }
            }
            c += count_line(t, key, ptype ? ptype : "", pdesc ? pdesc : "");
            if (json_object_get(p, "properties") || json_object_get(p, "items") ||
                json_object_get(p, "anyOf"))
                *approx = 1;
            free(dumped);
        }
    }
    return c;
}

static int64_t count_part(const cg_tokenizer *t, const char *model, const json_t *part,
                          cg_chat_count *out) {
    if (json_is_string(part))
        return count_json_text(t, part);
    const char *type = json_string_value(json_object_get(part, "type"));
    if (!type)
        return 0;
    if (strcmp(type, "text") == 0 || strcmp(type, "input_text") == 0 ||
        strcmp(type, "output_text") == 0 || strcmp(type, "refusal") == 0) {
        const json_t *txt = json_object_get(part, "text");
        if (!txt)
            txt = json_object_get(part, "refusal");
        return json_is_string(txt) ? count_json_text(t, txt) : 0;
    }
    if (strcmp(type, "image_url") == 0 || strcmp(type, "input_image") == 0) {
        const json_t *iu = json_object_get(part, "image_url");
        const char *url = json_is_string(iu) ? json_string_value(iu)
                                             : json_string_value(json_object_get(iu, "url"));
        const char *detail =
            json_string_value(json_object_get(json_is_object(iu) ? iu : part, "detail"));
        int64_t w = 0, h = 0;
        if (!url || strncmp(url, "data:", 5) != 0 ||
            cg_image_size_base64(url, strlen(url), &w, &h) != 0) {
            w = h = 0;
            out->images_unknown++;
        }
        out->images++;
        int64_t it = cg_openai_image_tokens(model, w, h, detail);
        out->image_tokens += it;
        return 0;
    }
    out->approx = 1; /* audio, files: not countable from the body */
    return 0;
}

int cg_chat_count_openai(const cg_tokenizer *t, const char *model, const json_t *body,
                         cg_chat_count *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!model)
        model = json_string_value(json_object_get(body, "model"));
    const json_t *msgs = json_object_get(body, "messages");
    if (!json_is_array(msgs)) {
        snprintf(err, errlen, "request has no \"messages\" array");
        return -1;
    }
    const char *bm = base_model(model);
    int legacy = strncmp(bm, "gpt-4", 5) == 0 && strncmp(bm, "gpt-4o", 6) != 0 &&
                 strncmp(bm, "gpt-4.", 6) != 0;
    legacy = legacy || strncmp(bm, "gpt-3.5", 7) == 0 || strncmp(bm, "gpt-35", 6) == 0;
    int old0301 = strncmp(bm, "gpt-3.5-turbo-0301", 18) == 0;
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        if (!json_is_object(m)) {
            snprintf(err, errlen, "message %zu is not an object", i);
            return -1;
        }
        out->messages++;
        out->overhead += old0301 ? 4 : 3;
        const char *key;
        json_t *v;
        json_object_foreach(m, key, v) {
            if (json_is_string(v)) {
                out->text_tokens += count_json_text(t, v);
                if (strcmp(key, "name") == 0)
                    out->overhead += old0301 ? -1 : 1;
            } else if (strcmp(key, "content") == 0 && json_is_array(v)) {
                size_t k;
                json_t *part;
                json_array_foreach(v, k, part) {
                    out->text_tokens += count_part(t, model, part, out);
                }
            } else if (strcmp(key, "tool_calls") == 0 && json_is_array(v)) {
                size_t k;
                json_t *call;
                json_array_foreach(v, k, call) {
                    const json_t *fn = json_object_get(call, "function");
                    out->text_tokens += count_json_text(t, json_object_get(fn, "name")) +
                                        count_json_text(t, json_object_get(fn, "arguments"));
                    out->overhead += 3;
                }
                out->approx = 1;
            } else if (strcmp(key, "function_call") == 0 && json_is_object(v)) {
                out->text_tokens += count_json_text(t, json_object_get(v, "name")) +
                                    count_json_text(t, json_object_get(v, "arguments"));
                out->approx = 1;
            } else if (!json_is_null(v)) {
                out->approx = 1;
            }
        }
    }
    out->overhead += 3; /* <|start|>assistant<|message|> */

    tool_consts k = {legacy ? 10 : 7, 3, 3, -3, 3, 12};
    const json_t *tools = json_object_get(body, "tools");
    const json_t *funcs = json_object_get(body, "functions");
    size_t nfn = 0;
    json_t *tool;
    if (json_is_array(tools)) {
        json_array_foreach(tools, i, tool) {
            const json_t *fn = json_object_get(tool, "function");
            if (json_is_object(fn)) {
                out->tool_tokens += count_function(t, fn, &k, &out->approx);
                nfn++;
            } else {
                out->tool_tokens += count_json_text(t, tool); /* built-in tools */
                out->approx = 1;
            }
        }
    }
    if (json_is_array(funcs)) {
        json_array_foreach(funcs, i, tool) {
            out->tool_tokens += count_function(t, tool, &k, &out->approx);
            nfn++;
        }
    }
    if (nfn)
        out->tool_tokens += k.func_end;
    const json_t *rf = json_object_get(body, "response_format");
    const json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
    if (schema) {
        out->tool_tokens += count_json_text(t, schema);
        out->approx = 1;
    }
    out->tokens = out->text_tokens + out->overhead + out->tool_tokens + out->image_tokens;
    return 0;
}
