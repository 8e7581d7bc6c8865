/* cli: `costgate tokens`: count tokens and print the estimated cost range.
 *
 * Owns: the command's options, input reading (capped), and its text and
 * JSON output. Counting and pricing are tokenize.c / estimate.c.
 */
#include "tokenize/cli.h"

#include "core/buf.h"
#include "core/money.h"
#include "cost/prices.h"
#include "tokenize/claude.h"
#include "tokenize/estimate.h"
#include "tokenize/tokenize.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUT (256u << 20)

static const char USAGE[] =
    "usage: costgate tokens [options] [FILE]\n"
    "\n"
    "Counts the tokens of text (FILE, or stdin when FILE is absent or '-') or of\n"
    "a request body JSON, and prints the estimated cost range in USD.\n"
    "\n"
    "  -m, --model MODEL      model: selects the encoding and the price (default gpt-4o)\n"
    "  -e, --encoding NAME    o200k_base or cl100k_base (overrides the model's)\n"
    "  -r, --request          the input is a request body (model taken from it unless -m)\n"
    "      --api API          openai-chat | openai-embeddings | openai-responses |\n"
    "                         anthropic-messages (default: guessed from model and body)\n"
    "      --max-tokens N     output bound for text input (default: the model's maximum)\n"
    "      --batch            price at batch rates\n"
    "      --prices FILE      LiteLLM model_prices JSON loaded over the built-in prices\n"
    "      --special          recognise special tokens such as <|endoftext|>\n"
    "      --ids              print the token ids (text input)\n"
    "      --json             print one JSON object\n"
    "      --data-dir DIR     directory holding o200k_base.tiktoken / cl100k_base.tiktoken\n"
    "      --b64-lines        each input line is base64 text; print its ids, one line each\n"
    "  -h, --help             this help\n"
    "\n"
    "OpenAI counts are exact (tiktoken); for chat requests they include the\n"
    "per-message, name, tool and image tokens. Claude counts are an estimate:\n"
    "cl100k tokens scaled by the median calibrated ratio, with the budget at\n"
    "its 95th percentile. The cost range is [input at the estimate, input at the\n"
    "bound + the output bound].\n";

enum {
    OPT_API = 256,
    OPT_MAX_TOKENS,
    OPT_BATCH,
    OPT_PRICES,
    OPT_SPECIAL,
    OPT_IDS,
    OPT_JSON,
    OPT_DATA_DIR,
    OPT_B64
};

typedef struct opts {
    const char *model, *encoding, *api, *prices, *data_dir, *file;
    int request, batch, special, ids, json, b64;
    int64_t max_tokens;
} opts;

static int read_input(const char *file, cg_buf *b) {
    FILE *f = (!file || strcmp(file, "-") == 0) ? stdin : fopen(file, "rb");
    if (!f) {
        fprintf(stderr, "tokens: cannot open %s\n", file);
        return -1;
    }
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (cg_buf_append(b, chunk, n) != 0) {
            fprintf(stderr, "tokens: input larger than %u MiB\n", MAX_INPUT >> 20);
            rc = -1;
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    return rc;
}

static long b64_decode(const char *s, size_t n, char *out) {
    uint32_t acc = 0;
    int bits = 0;
    long o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int v = (c >= 'A' && c <= 'Z')   ? c - 'A'
                : (c >= 'a' && c <= 'z') ? c - 'a' + 26
                : (c >= '0' && c <= '9') ? c - '0' + 52
                : c == '+'               ? 62
                : c == '/'               ? 63
                                         : -1;
        if (v < 0) {
            if (c == '=' || c == '\r')
                continue;
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)(acc >> bits);
        }
    }
    return o;
}

/* --b64-lines: one base64 text per line -> comma-separated ids per line. */
static int run_b64(const cg_tokenizer *t, const cg_buf *in, unsigned flags) {
    int rc = 0;
    char *text = malloc(in->len / 4 * 3 + 4);
    cg_tok_ids ids = {0};
    if (!text)
        return 1;
    size_t i = 0;
    while (i < in->len) {
        const char *nl = memchr(in->data + i, '\n', in->len - i);
        size_t e = nl ? (size_t)(nl - in->data) : in->len;
        long n = b64_decode(in->data + i, e - i, text);
        ids.n = 0;
        if (n < 0 || cg_tok_encode(t, text, (size_t)n, flags, SIZE_MAX / 8, &ids) != 0) {
            fprintf(stderr, "tokens: line at byte %zu: bad base64 or out of memory\n", i);
            rc = 1;
            break;
        }
        for (size_t k = 0; k < ids.n; k++)
            printf(k ? ",%u" : "%u", ids.v[k]);
        putchar('\n');
        i = e + 1;
    }
    cg_tok_ids_free(&ids);
    free(text);
    return rc;
}

static const struct {
    unsigned bit;
    const char *name;
} FLAG_NAMES[] = {{CG_EST_EXACT, "exact"},
                  {CG_EST_APPROX, "approx"},
                  {CG_EST_CLAUDE, "claude-estimate"},
                  {CG_EST_OUTPUT_UNBOUNDED, "output-unbounded"},
                  {CG_EST_IMAGES_UNKNOWN, "images-unknown"},
                  {CG_EST_UNPRICED, "unpriced"},
                  {CG_EST_BATCH, "batch"},
                  {CG_EST_OVER_CONTEXT, "over-context"}};
#define N_FLAGS (sizeof FLAG_NAMES / sizeof FLAG_NAMES[0])

static void print_result(const opts *o, const char *model, const cg_estimate *e, int64_t tokens,
                         const cg_tok_ids *ids) {
    char lo[48], hi[48];
    cg_money_fmt(e->cost_low, lo, sizeof lo);
    cg_money_fmt(e->cost_high, hi, sizeof hi);
    if (o->json) {
        json_t *flags = json_array();
        for (size_t i = 0; i < N_FLAGS; i++) {
            if (e->flags & FLAG_NAMES[i].bit)
                json_array_append_new(flags, json_string(FLAG_NAMES[i].name));
        }
        json_t *j = json_pack(
            "{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:o}", "model", model, "api",
            o->request ? cg_tok_api_name(e->api) : "text", "encoding",
            cg_encoding_name(e->encoding), "tokens", (json_int_t)tokens, "input_tokens",
            (json_int_t)e->input_tokens, "input_tokens_upper", (json_int_t)e->input_tokens_upper,
            "output_tokens_max", (json_int_t)e->output_tokens_max, "cost_low_nano",
            (json_int_t)e->cost_low, "cost_high_nano", (json_int_t)e->cost_high, "cost_low_usd", lo,
            "cost_high_usd", hi, "flags", flags);
        if (j && ids) {
            json_t *arr = json_array();
            for (size_t k = 0; k < ids->n; k++)
                json_array_append_new(arr, json_integer(ids->v[k]));
            json_object_set_new(j, "ids", arr);
        }
        if (j) {
            json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
            putchar('\n');
        }
        json_decref(j);
        return;
    }
    printf("model:          %s (%s)\n", model, cg_encoding_name(e->encoding));
    if (e->flags & CG_EST_CLAUDE)
        printf("input tokens:   %lld estimated, %lld budget bound (p95)\n",
               (long long)e->input_tokens, (long long)e->input_tokens_upper);
    else
        printf("input tokens:   %lld\n", (long long)e->input_tokens);
    if (!o->request && !(e->flags & CG_EST_CLAUDE))
        printf("text tokens:    %lld\n", (long long)tokens);
    printf("output bound:   %lld\n", (long long)e->output_tokens_max);
    printf("cost (USD):     %s .. %s\n", lo, hi);
    printf("flags:         ");
    for (size_t i = 0; i < N_FLAGS; i++) {
        if (e->flags & FLAG_NAMES[i].bit)
            printf(" %s", FLAG_NAMES[i].name);
    }
    printf("\n");
    if (ids) {
        printf("ids:            ");
        for (size_t k = 0; k < ids->n; k++)
            printf(k ? ",%u" : "%u", ids->v[k]);
        printf("\n");
    }
}

static int parse_args(int argc, char **argv, opts *o) {
    static const struct option LONG[] = {
        {"model", required_argument, NULL, 'm'},
        {"encoding", required_argument, NULL, 'e'},
        {"request", no_argument, NULL, 'r'},
        {"api", required_argument, NULL, OPT_API},
        {"max-tokens", required_argument, NULL, OPT_MAX_TOKENS},
        {"batch", no_argument, NULL, OPT_BATCH},
        {"prices", required_argument, NULL, OPT_PRICES},
        {"special", no_argument, NULL, OPT_SPECIAL},
        {"ids", no_argument, NULL, OPT_IDS},
        {"json", no_argument, NULL, OPT_JSON},
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"b64-lines", no_argument, NULL, OPT_B64},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    o->max_tokens = -1;
    while ((c = getopt_long(argc, argv, "m:e:rh", LONG, NULL)) != -1) {
        switch (c) {
        case 'm':
            o->model = optarg;
            break;
        case 'e':
            o->encoding = optarg;
            break;
        case 'r':
            o->request = 1;
            break;
        case OPT_API:
            o->api = optarg;
            break;
        case OPT_MAX_TOKENS: {
            char *end;
            long long v = strtoll(optarg, &end, 10);
            if (*end || v < 0) {
                fprintf(stderr, "tokens: bad --max-tokens\n");
                return 2;
            }
            o->max_tokens = v;
            break;
        }
        case OPT_BATCH:
            o->batch = 1;
            break;
        case OPT_PRICES:
            o->prices = optarg;
            break;
        case OPT_SPECIAL:
            o->special = 1;
            break;
        case OPT_IDS:
            o->ids = 1;
            break;
        case OPT_JSON:
            o->json = 1;
            break;
        case OPT_DATA_DIR:
            o->data_dir = optarg;
            break;
        case OPT_B64:
            o->b64 = 1;
            break;
        case 'h':
            fputs(USAGE, stdout);
            return 0;
        default:
            fputs(USAGE, stderr);
            return 2;
        }
    }
    if (optind < argc)
        o->file = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "tokens: too many arguments\n");
        return 2;
    }
    return -1; /* go on */
}

static cg_tok_api guess_api(const char *model, const json_t *body) {
    if (model && strstr(model, "claude"))
        return CG_TOK_API_ANTHROPIC_MESSAGES;
    if (!json_object_get(body, "messages") && json_object_get(body, "input"))
        return model && strstr(model, "embedding") ? CG_TOK_API_OPENAI_EMBEDDINGS
                                                   : CG_TOK_API_OPENAI_RESPONSES;
    return CG_TOK_API_OPENAI_CHAT;
}

static cg_tok_api api_from_name(const char *s) {
    for (int a = 0; a <= CG_TOK_API_ANTHROPIC_MESSAGES; a++) {
        if (strcmp(s, cg_tok_api_name((cg_tok_api)a)) == 0)
            return (cg_tok_api)a;
    }
    return CG_TOK_API_UNKNOWN;
}

int cg_tokens_main(int argc, char **argv) {
    opts o = {0};
    int rc = parse_args(argc, argv, &o);
    char err[512] = "";
    cg_buf in;
    cg_price_table *prices = NULL;
    json_t *body = NULL;
    cg_tok_ids ids = {0};
    cg_buf_init(&in, MAX_INPUT);
    if (rc >= 0)
        goto done;
    rc = 1;
    if (o.data_dir)
        cg_tok_set_data_dir(o.data_dir);
    if (read_input(o.file, &in) != 0)
        goto done;
    prices = cg_prices_builtin();
    if (!prices)
        goto done;
    if (o.prices && cg_prices_load_litellm(prices, o.prices, 1, err, sizeof err) < 0) {
        fprintf(stderr, "tokens: %s\n", err);
        goto done;
    }
    const char *model = o.model;
    if (o.request) {
        json_error_t je;
        body = json_loadb(in.data, in.len, 0, &je);
        if (!json_is_object(body)) {
            fprintf(stderr, "tokens: request is not a JSON object (%s, line %d)\n", je.text,
                    je.line);
            goto done;
        }
        if (!model)
            model = json_string_value(json_object_get(body, "model"));
    }
    if (!model)
        model = "gpt-4o";
    cg_encoding enc = o.encoding ? cg_encoding_from_name(o.encoding) : CG_ENC_NONE;
    if (o.encoding && enc == CG_ENC_NONE) {
        fprintf(stderr, "tokens: unknown encoding %s (o200k_base, cl100k_base)\n", o.encoding);
        rc = 2;
        goto done;
    }
    int claude = strstr(model, "claude") != NULL && !o.encoding;
    if (enc == CG_ENC_NONE)
        enc = claude ? CG_ENC_CL100K : cg_encoding_for_model(model);
    if (enc == CG_ENC_NONE) {
        fprintf(stderr, "tokens: no tokenizer for model %s (use --encoding)\n", model);
        goto done;
    }
    const cg_tokenizer *t = cg_tok_get(enc, err, sizeof err);
    if (!t) {
        fprintf(stderr, "tokens: %s\n", err);
        goto done;
    }
    unsigned flags = o.special ? CG_TOK_ALLOW_SPECIAL : 0;
    if (o.b64) {
        rc = run_b64(t, &in, flags);
        goto done;
    }
    const cg_price *price = cg_prices_find(prices, model);
    cg_estimate e;
    int64_t tokens;
    if (o.request) {
        cg_tok_api api = o.api ? api_from_name(o.api) : guess_api(model, body);
        if (api == CG_TOK_API_UNKNOWN) {
            fprintf(stderr, "tokens: unknown --api %s\n", o.api);
            rc = 2;
            goto done;
        }
        if (cg_estimate_request(api, model, body, price, o.batch, &e, err, sizeof err) != 0) {
            fprintf(stderr, "tokens: %s\n", err);
            goto done;
        }
        tokens = e.input_tokens;
    } else {
        if (o.ids && cg_tok_encode(t, in.data, in.len, flags, SIZE_MAX / 8, &ids) != 0)
            goto done;
        tokens = o.ids ? (int64_t)ids.n : cg_tok_count(t, in.data, in.len, flags);
        if (tokens < 0)
            goto done;
        memset(&e, 0, sizeof e);
        e.encoding = enc;
        e.input_tokens = e.input_tokens_upper = tokens;
        e.flags = CG_EST_EXACT;
        if (claude) {
            e.api = CG_TOK_API_ANTHROPIC_MESSAGES;
            e.input_tokens =
                CG_CLAUDE_BASE_TOKENS + cg_claude_scale(tokens, CG_CLAUDE_RATIO_P50_PPM);
            e.input_tokens_upper =
                CG_CLAUDE_BASE_TOKENS + cg_claude_scale(tokens, CG_CLAUDE_RATIO_P95_PPM);
            e.flags = CG_EST_CLAUDE;
        }
        e.output_tokens_max = o.max_tokens >= 0                       ? o.max_tokens
                              : price && price->max_output_tokens > 0 ? price->max_output_tokens
                                                                      : 0;
        if (o.max_tokens < 0 && !(price && price->max_output_tokens > 0))
            e.flags |= CG_EST_OUTPUT_UNBOUNDED;
        if (!price)
            e.flags |= CG_EST_UNPRICED;
        if (o.batch)
            e.flags |= CG_EST_BATCH;
        e.cost_low = cg_estimate_cost(price, o.batch, e.input_tokens, 0);
        e.cost_high = cg_estimate_cost(price, o.batch, e.input_tokens_upper, e.output_tokens_max);
    }
    print_result(&o, model, &e, tokens, o.ids ? &ids : NULL);
    rc = 0;
done:
    cg_tok_ids_free(&ids);
    json_decref(body);
    cg_prices_free(prices);
    cg_buf_free(&in);
    return rc;
}
