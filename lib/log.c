#include "log.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

/* A line is built in one stack buffer and written with one fwrite, so lines never interleave. */
#define LINE_MAX_BYTES 4096

static struct {
    enum tl_log_level level;
    enum tl_log_format format;
    FILE *out;
} logger = {TL_LOG_INFO, TL_LOG_TEXT, NULL};

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void tl_log_configure(enum tl_log_level level, enum tl_log_format format, FILE *out)
{
    logger.level = level;
    logger.format = format;
    logger.out = out;
}

bool tl_log_enabled(enum tl_log_level level)
{
    return level >= logger.level && level < TL_LOG_OFF;
}

enum tl_err tl_log_level_parse(const char *text, enum tl_log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(text, level_names[i]) == 0) {
            *out = (enum tl_log_level)i;
            return TL_OK;
        }
    }
    return TL_EINVAL;
}

enum tl_err tl_log_format_parse(const char *text, enum tl_log_format *out)
{
    if (strcmp(text, "text") == 0) {
        *out = TL_LOG_TEXT;
        return TL_OK;
    }
    if (strcmp(text, "json") == 0) {
        *out = TL_LOG_JSON;
        return TL_OK;
    }
    return TL_EINVAL;
}

/*
 * Append-only view of the line buffer. Appends are all-or-nothing, and once one does not fit all
 * later ones are dropped too; `mark` is the length after the last complete field, where a cut
 * line is closed so that even a cut JSON line still parses.
 */
#define LINE_TAIL_RESERVE 32

struct line {
    char buf[LINE_MAX_BYTES];
    size_t len;
    size_t mark;
    bool truncated;
};

static void put_bytes(struct line *line, const char *s, size_t n)
{
    if (line->truncated || n > sizeof(line->buf) - LINE_TAIL_RESERVE - line->len) {
        line->truncated = true;
        return;
    }
    memcpy(line->buf + line->len, s, n);
    line->len += n;
}

/* Appends the closing text into the reserved tail; it always fits. */
static void put_tail(struct line *line, const char *s)
{
    size_t n = strlen(s);
    memcpy(line->buf + line->len, s, n);
    line->len += n;
}

static void put_str(struct line *line, const char *s)
{
    put_bytes(line, s, strlen(s));
}

static void put_fmt(struct line *line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put_fmt(struct line *line, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        put_bytes(line, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* JSON string body escaping (RFC 8259 section 7); also used for quoted text values. */
static void put_escaped(struct line *line, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            put_str(line, "\\\"");
            break;
        case '\\':
            put_str(line, "\\\\");
            break;
        case '\n':
            put_str(line, "\\n");
            break;
        case '\r':
            put_str(line, "\\r");
            break;
        case '\t':
            put_str(line, "\\t");
            break;
        default:
            if (*p < 0x20)
                put_fmt(line, "\\u%04x", *p);
            else
                put_bytes(line, (const char *)p, 1);
        }
    }
}

/* A text value needs quotes when a reader splitting on spaces and '=' would misread it. */
static bool needs_quotes(const char *s)
{
    if (*s == '\0')
        return true;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
            return true;
    }
    return false;
}

static void put_timestamp(struct line *line)
{
    struct timespec now;
    struct tm tm;
    char tmp[32];
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
    put_str(line, tmp);
    put_fmt(line, ".%03ldZ", now.tv_nsec / 1000000);
}

static void put_number(struct line *line, const struct tl_log_field *f)
{
    if (f->type == TL_LOG_INT)
        put_fmt(line, "%lld", f->v.i);
    else if (f->type == TL_LOG_BOOL)
        put_str(line, f->v.b ? "true" : "false");
    else if (isfinite(f->v.d))
        put_fmt(line, "%.6g", f->v.d);
    else
        put_str(line, "null"); /* JSON has no NaN or infinity */
}

static void format_text(struct line *line, enum tl_log_level level, const char *msg,
                        const struct tl_log_field *fields, size_t nfields)
{
    put_timestamp(line);
    put_fmt(line, " %-5s ", level_names[level]);
    put_str(line, msg);
    line->mark = line->len;
    for (size_t i = 0; i < nfields; i++) {
        const struct tl_log_field *f = &fields[i];
        put_str(line, " ");
        put_str(line, f->key);
        put_str(line, "=");
        if (f->type != TL_LOG_STR) {
            put_number(line, f);
        }
        else if (f->v.s == NULL) {
            put_str(line, "<null>");
        }
        else if (needs_quotes(f->v.s)) {
            put_str(line, "\"");
            put_escaped(line, f->v.s);
            put_str(line, "\"");
        }
        else {
            put_str(line, f->v.s);
        }
        if (!line->truncated)
            line->mark = line->len;
    }
}

static void format_json(struct line *line, enum tl_log_level level, const char *msg,
                        const struct tl_log_field *fields, size_t nfields)
{
    put_str(line, "{\"ts\":\"");
    put_timestamp(line);
    put_str(line, "\",\"level\":\"");
    put_str(line, level_names[level]);
    put_str(line, "\"");
    line->mark = line->len;
    put_str(line, ",\"msg\":\"");
    put_escaped(line, msg);
    put_str(line, "\"");
    if (!line->truncated)
        line->mark = line->len;
    for (size_t i = 0; i < nfields; i++) {
        const struct tl_log_field *f = &fields[i];
        put_str(line, ",\"");
        put_escaped(line, f->key);
        put_str(line, "\":");
        if (f->type != TL_LOG_STR) {
            put_number(line, f);
        }
        else if (f->v.s == NULL) {
            put_str(line, "null");
        }
        else {
            put_str(line, "\"");
            put_escaped(line, f->v.s);
            put_str(line, "\"");
        }
        if (!line->truncated)
            line->mark = line->len;
    }
}

void tl_log_emit(enum tl_log_level level, const char *msg, const struct tl_log_field *fields,
                 size_t nfields)
{
    if (!tl_log_enabled(level))
        return;
    struct line line = {.len = 0, .mark = 0, .truncated = false};
    bool json = logger.format == TL_LOG_JSON;
    if (json)
        format_json(&line, level, msg, fields, nfields);
    else
        format_text(&line, level, msg, fields, nfields);
    if (line.truncated) {
        line.len = line.mark;
        put_tail(&line, json ? ",\"truncated\":true" : " truncated=true");
    }
    if (json)
        put_tail(&line, "}");
    put_tail(&line, "\n");
    FILE *out = logger.out ? logger.out : stderr;
    fwrite(line.buf, 1, line.len, out);
    fflush(out);
}
