/* duration: parsing and printing of durations such as "14d", "6h", "1h30m" and "500ms". */
#ifndef TL_DURATION_H
#define TL_DURATION_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/*
 * Parses a sequence of <number><unit> terms, units ms, s, m, h, d (24h) and w (7d); numbers may
 * have a fraction ("1.5h"). Go's time.ParseDuration accepts all of these but d and w, which
 * Kubernetes users write for history windows. Writes whole milliseconds to *out_ms on success;
 * TL_EINVAL for malformed text, TL_ERANGE past about 290 million years.
 */
enum tl_err tl_duration_parse(const char *text, int64_t *out_ms);

/* Prints the shortest exact form ("14d", "1h30m", "250ms", "0s") into buf. TL_ETOOBIG if short. */
enum tl_err tl_duration_format(int64_t ms, char *buf, size_t len);

#endif
