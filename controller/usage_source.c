#include "usage_source.h"

#include <stddef.h>

/* Replaced by the Prometheus-backed source; until then nothing is known. */
bool tl_usage_source_get(struct tl_usage_source *src, const char *ns, const char *kind,
                         const char *name, const char *container, struct tl_usage *out,
                         double *analyzed_at)
{
    (void)src;
    (void)ns;
    (void)kind;
    (void)name;
    (void)container;
    (void)out;
    (void)analyzed_at;
    return false;
}
