/* yaml_json: YAML (and JSON) text to cJSON trees, typed the way Kubernetes reads YAML. */
#ifndef TL_YAML_JSON_H
#define TL_YAML_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "error.h"

/* Inputs longer than this are refused with TL_ETOOBIG. */
#define TL_YAML_MAX_INPUT ((size_t)8 << 20)
/* Mappings and sequences nested deeper than this are refused with TL_ETOOBIG. */
#define TL_YAML_MAX_DEPTH 128
/* Approximate bytes that alias expansion and merge keys may add ("billion laughs" guard). */
#define TL_YAML_ALIAS_BUDGET ((size_t)16 << 20)

/*
 * Converts a YAML stream into a cJSON array with one element per document (an empty stream gives
 * an empty array; an empty document gives null), as sigs.k8s.io/yaml (go-yaml v2, YAML 1.1
 * rules) does before Kubernetes decodes JSON:
 *  - quoted and block scalars are strings; plain scalars are typed: null/~/empty -> null;
 *    true/false/yes/no/on/off/y/n (in lower, Title or UPPER case) -> bool; integers (decimal,
 *    0x, 0o, 0b, leading-0 octal, '_' separators) and floats -> numbers; anything else
 *    (timestamps included) -> string. Explicit !!str/!!int/!!float/!!bool/!!null tags are
 *    honoured; other tags leave the text a string. .inf and .nan have no JSON form: TL_EINVAL.
 *  - mapping keys become strings (true -> "true", 0x10 -> "16"); a key that is a mapping or a
 *    sequence is TL_EINVAL; a repeated key keeps the last value; "<<" merge keys are applied.
 *  - aliases are expanded into copies, limited by TL_YAML_ALIAS_BUDGET (TL_ETOOBIG past it).
 *  - strings containing NUL are refused (TL_EINVAL): they would be cut short silently.
 * Numbers are doubles, so integers beyond 2^53 lose precision.
 * On success *out is owned by the caller (cJSON_Delete). On failure errbuf (may be NULL) says
 * where: "line 3 column 5: mapping values are not allowed in this context".
 */
enum tl_err tl_yaml_to_json(const char *text, size_t len, cJSON **out, char *errbuf, size_t errlen);

#endif
