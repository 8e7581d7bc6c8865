/* replay: converting between an API's stream form and its complete form.
 *
 * Owns: (1) the capture of a streamed answer (each SSE event's data, length
 * prefixed, bounded by the caller's buffer cap) and its rebuild into the
 * complete non-stream response body the cache stores; (2) the replay of a
 * stored body as a well-formed SSE stream in the API's own event format:
 *   OpenAI: chat.completion.chunk events (a role chunk, the content, tool
 *     calls, a finish chunk per choice), the usage chunk (choices: []) when
 *     the client asked for stream_options.include_usage, then the caller's
 *     terminal "data: [DONE]";
 *   Anthropic: message_start, per block content_block_start / _delta /
 *     _stop, message_delta (stop reason, output tokens), then the caller's
 *     terminal message_stop.
 * Both official SDKs parse the result; the deltas concatenate to the stored
 * text.
 */
#ifndef CG_CACHE_REPLAY_H
#define CG_CACHE_REPLAY_H

#include <stddef.h>

#include "core/buf.h"
#include "http/sse.h"

/* Appends one event (its data; Anthropic data carries its own "type") to a
 * capture buffer. -1 when it does not fit (the capture is then unusable). */
int cg_replay_capture(cg_buf *cap, const char *data, size_t len);

/* Rebuilds the complete response body from a capture into out (JSON).
 * 0, or -1 when the events do not make a complete answer. */
int cg_replay_rebuild(int anthropic, const char *cap, size_t cap_len, cg_buf *out);

/* The SSE events for a stored body, without the terminal event. 0 or -1. */
int cg_replay_sse(int anthropic, const char *body, size_t len, int include_usage, cg_buf *out);

/* The terminal event of each API's stream. */
const char *cg_replay_terminal(int anthropic);

#endif
