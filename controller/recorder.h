/* recorder: Kubernetes Events for what the operator does, deduplicated, written fire-and-forget. */
#ifndef TL_RECORDER_H
#define TL_RECORDER_H

#include "event_dedup.h"

struct tl_operator;
struct tl_recorder;

/* Reporting instance: the operator's identity. Caller frees with tl_recorder_destroy. */
struct tl_recorder *tl_recorder_create(struct tl_operator *op, const char *instance);
void tl_recorder_destroy(struct tl_recorder *rec);

/*
 * Records an Event (borrowed, copied before return). Failures are logged, never returned: an
 * Event reports an operation and is not part of it.
 */
void tl_recorder_emit(struct tl_recorder *rec, const struct tl_event *event);

#endif
