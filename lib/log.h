/* log: levelled, structured logging (text or JSON lines) with key=value fields. */
#ifndef TL_LOG_H
#define TL_LOG_H

#include <stdbool.h>
#include <stdio.h>

#include "error.h"

enum tl_log_level { TL_LOG_DEBUG, TL_LOG_INFO, TL_LOG_WARN, TL_LOG_ERROR, TL_LOG_OFF };
enum tl_log_format { TL_LOG_TEXT, TL_LOG_JSON };

enum tl_log_field_type { TL_LOG_FIELD_END, TL_LOG_STR, TL_LOG_INT, TL_LOG_DBL, TL_LOG_BOOL };

/* One key=value pair. Keys and string values are borrowed for the duration of the call. */
struct tl_log_field {
    enum tl_log_field_type type;
    const char *key;
    union {
        const char *s;
        long long i;
        double d;
        bool b;
    } v;
};

#define TL_STR(k, val)  ((struct tl_log_field){.type = TL_LOG_STR, .key = (k), .v.s = (val)})
#define TL_INT(k, val)  ((struct tl_log_field){.type = TL_LOG_INT, .key = (k), .v.i = (val)})
#define TL_DBL(k, val)  ((struct tl_log_field){.type = TL_LOG_DBL, .key = (k), .v.d = (val)})
#define TL_BOOL(k, val) ((struct tl_log_field){.type = TL_LOG_BOOL, .key = (k), .v.b = (val)})
#define TL_ERRF(err)    TL_STR("error", tl_strerror(err))

/*
 * The field array starts with an END sentinel so the macro also works with no fields; the count
 * excludes it. Nothing is built or formatted when the level is off.
 */
#define TL_LOG(level, msg, ...)                                                                    \
    do {                                                                                           \
        if (tl_log_enabled(level)) {                                                               \
            const struct tl_log_field tl_log_fields_[] = {{.type = TL_LOG_FIELD_END},              \
                                                          __VA_ARGS__};                            \
            tl_log_emit((level), (msg), tl_log_fields_ + 1,                                        \
                        sizeof(tl_log_fields_) / sizeof(tl_log_fields_[0]) - 1);                   \
        }                                                                                          \
    } while (0)

#define TL_DEBUG(...) TL_LOG(TL_LOG_DEBUG, __VA_ARGS__)
#define TL_INFO(...)  TL_LOG(TL_LOG_INFO, __VA_ARGS__)
#define TL_WARN(...)  TL_LOG(TL_LOG_WARN, __VA_ARGS__)
#define TL_ERROR(...) TL_LOG(TL_LOG_ERROR, __VA_ARGS__)

/* Sets the threshold, the format and the stream (borrowed; NULL means stderr). */
void tl_log_configure(enum tl_log_level level, enum tl_log_format format, FILE *out);

bool tl_log_enabled(enum tl_log_level level);

/* Writes one line. Never allocates; a line longer than the internal buffer is cut with "...". */
void tl_log_emit(enum tl_log_level level, const char *msg, const struct tl_log_field *fields,
                 size_t nfields);

/* Parses "debug", "info", "warn", "error" or "off". */
enum tl_err tl_log_level_parse(const char *text, enum tl_log_level *out);
/* Parses "text" or "json". */
enum tl_err tl_log_format_parse(const char *text, enum tl_log_format *out);

#endif
