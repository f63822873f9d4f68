/* usage_source: where reconcilers read a workload container's usage history from. */
#ifndef TL_USAGE_SOURCE_H
#define TL_USAGE_SOURCE_H

#include <stdbool.h>

#include "recommend.h"

struct tl_usage_source;

/*
 * Fills *out (histograms borrowed until the next collection) with the usage of one container of
 * a workload, and *analyzed_at with when it was last collected. false when nothing is known.
 */
bool tl_usage_source_get(struct tl_usage_source *src, const char *ns, const char *kind,
                         const char *name, const char *container, struct tl_usage *out,
                         double *analyzed_at);

#endif
