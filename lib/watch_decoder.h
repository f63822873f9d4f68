/* watch_decoder: splits a Kubernetes watch stream (newline-delimited JSON) into events. */
#ifndef TL_WATCH_DECODER_H
#define TL_WATCH_DECODER_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "error.h"

#define TL_WATCH_DEFAULT_MAX_LINE ((size_t)16 << 20)

/*
 * One event {"type": ..., "object": ...}. type and object are borrowed and valid only during the
 * call (cJSON_Duplicate keeps a copy). The callback must not reset or destroy the decoder.
 * Returning non-TL_OK stops the feed and is returned by tl_watch_decoder_feed.
 */
typedef enum tl_err (*tl_watch_event_fn)(void *arg, const char *type, cJSON *object);

struct tl_watch_decoder;

/*
 * Creates a decoder that calls on_event for each complete line. max_line caps a line in bytes
 * (0 = TL_WATCH_DEFAULT_MAX_LINE). Returns NULL on allocation failure; caller frees with
 * tl_watch_decoder_destroy.
 */
struct tl_watch_decoder *tl_watch_decoder_create(size_t max_line, tl_watch_event_fn on_event,
                                                 void *arg);

void tl_watch_decoder_destroy(struct tl_watch_decoder *dec);

/*
 * Feeds bytes split anywhere (inside a line, a UTF-8 sequence or a "\r\n"). Calls on_event for each
 * completed line, in order. Errors: TL_ETOOBIG (a line over the cap), TL_EINVAL (a line that is not
 * a JSON object with a string "type" and an object "object"), TL_ENOMEM, or the callback's error.
 * After an error the decoder stays failed and returns the same error until reset.
 */
enum tl_err tl_watch_decoder_feed(struct tl_watch_decoder *dec, const char *data, size_t len);

/* Forgets buffered bytes and any error, for the next stream. */
void tl_watch_decoder_reset(struct tl_watch_decoder *dec);

/* Bytes of an unfinished line held now (a stream that ends with some is truncated). */
size_t tl_watch_decoder_pending(const struct tl_watch_decoder *dec);

#endif
