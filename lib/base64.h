/* base64: RFC 4648 standard-alphabet base64, the encoding Kubernetes uses for []byte fields. */
#ifndef TL_BASE64_H
#define TL_BASE64_H

#include <stddef.h>

#include "error.h"

/*
 * Encodes len bytes of data with padding and no line breaks. Returns a NUL-terminated string the
 * caller frees, or NULL when memory runs out.
 */
char *tl_base64_encode(const void *data, size_t len);

/*
 * Decodes len bytes of text. Padding is required (as Go's base64.StdEncoding, which decodes
 * kubeconfig and Secret data, requires it); CR, LF, space and tab anywhere are skipped, so
 * wrapped PEM-style text decodes. On success *out holds *out_len bytes plus a NUL the length
 * does not count, and the caller frees it. TL_EINVAL for a character outside the alphabet,
 * misplaced padding or a length that is not a multiple of four; TL_ENOMEM.
 */
enum tl_err tl_base64_decode(const char *text, size_t len, char **out, size_t *out_len);

#endif
