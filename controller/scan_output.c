#include "scan_output.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "json.h"
#include "quantity.h"
#include "rec_status.h"
#include "yaml_json.h"

#define GIB            1073741824.0
#define NCOLS          7
#define COL_GAP        2
#define CELL_MAX       300
#define MIN_NAME_WIDTH 10

bool tl_scan_format_parse(const char *text, enum tl_scan_format *out)
{
    static const char *const names[] = {"table", "json", "yaml", "csv", "html"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(text, names[i]) == 0) {
            *out = (enum tl_scan_format)i;
            return true;
        }
    }
    return false;
}

/* ---- Small formatting helpers ---- */

static const char *type_name(enum tl_container_type type)
{
    return type == TL_CONTAINER_INIT      ? "Init"
           : type == TL_CONTAINER_SIDECAR ? "Sidecar"
                                          : "Container";
}

/* A quantity, or "-" when unset. */
static void cpu_text(double cores, char *buf, size_t len)
{
    if (cores > 0)
        tl_format_cpu(cores, buf, len);
    else
        snprintf(buf, len, "-");
}

static void memory_text(double bytes, char *buf, size_t len)
{
    if (bytes > 0)
        tl_format_memory(bytes, buf, len);
    else
        snprintf(buf, len, "-");
}

/* "$61.20", "-$5.00"; a value that rounds to zero cents prints "$0.00", never "-$0.00". */
static void usd_text(double usd, char *buf, size_t len)
{
    double cents = round(usd * 100);
    if (cents == 0)
        cents = 0;
    snprintf(buf, len, "%s$%.2f", cents < 0 ? "-" : "", fabs(cents) / 100);
}

/* "14d", "36h", "90m" or "45s": the largest unit that divides the duration. */
static void duration_text(double seconds, char *buf, size_t len)
{
    long long s = llround(seconds);
    if (s > 0 && s % 86400 == 0)
        snprintf(buf, len, "%lldd", s / 86400);
    else if (s > 0 && s % 3600 == 0)
        snprintf(buf, len, "%lldh", s / 3600);
    else if (s > 0 && s % 60 == 0)
        snprintf(buf, len, "%lldm", s / 60);
    else
        snprintf(buf, len, "%llds", s);
}

/* Columns a UTF-8 string takes on a terminal: every code point counts one (names are ASCII; the
 * arrow and the ellipsis are the only wider-than-a-byte characters the table prints). */
static size_t display_width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Cuts text (in place) to at most width columns, ending it with an ellipsis when cut. */
static void truncate_cell(char *text, size_t size, size_t width)
{
    if (width == 0 || display_width(text) <= width)
        return;
    size_t cols = 0;
    size_t i = 0;
    while (text[i] && cols < width - 1) {
        i++;
        while (((unsigned char)text[i] & 0xC0) == 0x80)
            i++;
        cols++;
    }
    if (i + 4 <= size)
        memcpy(text + i, "\xE2\x80\xA6", 4);
    else
        text[i] = '\0';
}

static bool counts_for_pod(const struct tl_scan_container *c)
{
    return c->type != TL_CONTAINER_INIT;
}

void tl_scan_report_totals(const struct tl_scan_report *report, struct tl_scan_totals *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < report->count; i++) {
        const struct tl_scan_workload *w = &report->workloads[i];
        out->workloads++;
        out->savings_usd += w->savings_usd;
        if (w->confidence <= TL_CONFIDENCE_HIGH)
            out->by_confidence[w->confidence]++;
        double replicas = w->replicas > 0 ? w->replicas : 0;
        for (size_t j = 0; j < w->ncontainers; j++) {
            const struct tl_scan_container *c = &w->containers[j];
            out->containers++;
            if (!counts_for_pod(c))
                continue;
            out->cpu_current += c->current.cpu_request * replicas;
            out->cpu_recommended += c->recommended.cpu_request * replicas;
            out->memory_current += c->current.memory_request * replicas;
            out->memory_recommended += c->recommended.memory_request * replicas;
        }
    }
}

/* ---- JSON ---- */

/* Builds a tree, remembering the first allocation failure so calls can be chained. */
struct builder {
    bool ok;
};

static cJSON *add_object(struct builder *b, cJSON *parent, const char *key)
{
    cJSON *obj = b->ok && parent ? cJSON_AddObjectToObject(parent, key) : NULL;
    b->ok = obj != NULL;
    return obj;
}

static void add_string(struct builder *b, cJSON *parent, const char *key, const char *value)
{
    if (b->ok)
        b->ok = parent && cJSON_AddStringToObject(parent, key, value) != NULL;
}

static void add_number(struct builder *b, cJSON *parent, const char *key, double value)
{
    if (b->ok)
        b->ok = parent && cJSON_AddNumberToObject(parent, key, value) != NULL;
}

static void add_bool(struct builder *b, cJSON *parent, const char *key, bool value)
{
    if (b->ok)
        b->ok = parent && cJSON_AddBoolToObject(parent, key, value) != NULL;
}

static void add_cpu(struct builder *b, cJSON *parent, const char *key, double cores)
{
    char buf[TL_QUANTITY_STR_MAX];
    if (cores <= 0)
        return;
    tl_format_cpu(cores, buf, sizeof(buf));
    add_string(b, parent, key, buf);
}

static void add_memory(struct builder *b, cJSON *parent, const char *key, double bytes)
{
    char buf[TL_QUANTITY_STR_MAX];
    if (bytes <= 0)
        return;
    tl_format_memory(bytes, buf, sizeof(buf));
    add_string(b, parent, key, buf);
}

/* A decimal as a string with a fixed number of decimals, as status.savings has them. */
static void add_fixed(struct builder *b, cJSON *parent, const char *key, int decimals, double value)
{
    char buf[64];
    double scale = pow(10, decimals);
    /* + 0.0 turns a rounded -0 into 0, so nothing prints "-0.00". */
    snprintf(buf, sizeof(buf), "%.*f", decimals, round(value * scale) / scale + 0.0);
    add_string(b, parent, key, buf);
}

/* {requests, limits} as a Recommendation's status has them (rec_status.h). */
static void add_resources(struct builder *b, cJSON *parent, const char *key,
                          const struct tl_resources *r)
{
    if (b->ok)
        b->ok = tl_json_member_set(parent, key, tl_resources_to_json(r)) == TL_OK;
}

static void add_container(struct builder *b, cJSON *array, const struct tl_scan_container *c)
{
    cJSON *obj = b->ok ? cJSON_CreateObject() : NULL;
    if (!obj || !cJSON_AddItemToArray(array, obj)) {
        cJSON_Delete(obj);
        b->ok = false;
        return;
    }
    add_string(b, obj, "name", c->name);
    add_string(b, obj, "type", type_name(c->type));
    add_string(b, obj, "confidence", tl_confidence_name(c->confidence));
    add_string(b, obj, "explanation", c->explanation);
    add_resources(b, obj, "current", &c->current);
    add_resources(b, obj, "recommended", &c->recommended);
    if (c->confidence != TL_CONFIDENCE_NONE) {
        cJSON *lower = add_object(b, obj, "lowerBound");
        add_cpu(b, lower, "cpu", c->lower.cpu_request);
        add_memory(b, lower, "memory", c->lower.memory_request);
        cJSON *upper = add_object(b, obj, "upperBound");
        add_cpu(b, upper, "cpu", c->upper.cpu_request);
        add_memory(b, upper, "memory", c->upper.memory_request);
        cJSON *usage = add_object(b, obj, "usage");
        add_cpu(b, usage, "cpuP50", c->usage.cpu_p50);
        add_cpu(b, usage, "cpuP95", c->usage.cpu_p95);
        add_cpu(b, usage, "cpuMax", c->usage.cpu_max);
        add_memory(b, usage, "memoryP50", c->usage.memory_p50);
        add_memory(b, usage, "memoryP99", c->usage.memory_p99);
        add_memory(b, usage, "memoryMax", c->usage.memory_max);
        add_number(b, usage, "samples", (double)c->usage.samples);
        add_number(b, usage, "coveragePercent", floor(c->usage.coverage * 100));
    }
    if (counts_for_pod(c)) {
        cJSON *savings = add_object(b, obj, "savings");
        add_fixed(b, savings, "monthlyUSD", 2, c->savings_usd);
    }
}

static void add_workload(struct builder *b, cJSON *array, const struct tl_scan_workload *w)
{
    cJSON *obj = b->ok ? cJSON_CreateObject() : NULL;
    if (!obj || !cJSON_AddItemToArray(array, obj)) {
        cJSON_Delete(obj);
        b->ok = false;
        return;
    }
    add_string(b, obj, "namespace", w->ns);
    add_string(b, obj, "kind", tl_workload_kind_name(w->kind));
    add_string(b, obj, "name", w->name);
    add_number(b, obj, "replicas", w->replicas);
    add_string(b, obj, "confidence", tl_confidence_name(w->confidence));
    add_string(b, obj, "explanation", w->explanation);
    cJSON *savings = add_object(b, obj, "savings");
    add_fixed(b, savings, "monthlyUSD", 2, w->savings_usd);
    add_fixed(b, savings, "cpuCores", 3, w->cpu_saved);
    add_fixed(b, savings, "memoryBytes", 0, w->memory_saved);
    if (w->hpa.present) {
        cJSON *hpa = add_object(b, obj, "hpa");
        add_bool(b, hpa, "existing", w->hpa.existing);
        cJSON *rec = add_object(b, hpa, "recommended");
        add_number(b, rec, "minReplicas", w->hpa.min_replicas);
        add_number(b, rec, "maxReplicas", w->hpa.max_replicas);
        add_string(b, rec, "metric", w->hpa.metric);
        add_number(b, rec, "targetUtilization", w->hpa.target_percent);
        add_string(b, hpa, "reason", w->hpa.reason);
    }
    cJSON *containers = b->ok ? cJSON_AddArrayToObject(obj, "containers") : NULL;
    b->ok = containers != NULL;
    for (size_t i = 0; b->ok && i < w->ncontainers; i++)
        add_container(b, containers, &w->containers[i]);
}

cJSON *tl_scan_report_json(const struct tl_scan_report *report)
{
    struct builder b = {true};
    struct tl_scan_totals t;
    tl_scan_report_totals(report, &t);
    char text[64];
    cJSON *doc = cJSON_CreateObject();
    b.ok = doc != NULL;
    add_string(&b, doc, "apiVersion", "tailor.dev/v1alpha1");
    add_string(&b, doc, "kind", "ScanReport");
    cJSON *meta = add_object(&b, doc, "metadata");
    tl_format_time(report->generated_at, text, sizeof(text));
    add_string(&b, meta, "generatedAt", text);
    if (report->context)
        add_string(&b, meta, "context", report->context);
    if (report->prometheus)
        add_string(&b, meta, "prometheus", report->prometheus);
    duration_text(report->history, text, sizeof(text));
    add_string(&b, meta, "history", text);
    if (report->region)
        add_string(&b, meta, "region", report->region);

    cJSON *summary = add_object(&b, doc, "summary");
    add_number(&b, summary, "namespaces", (double)report->namespaces);
    add_number(&b, summary, "workloads", (double)t.workloads);
    add_number(&b, summary, "containers", (double)t.containers);
    add_fixed(&b, summary, "monthlySavingsUSD", 2, t.savings_usd);
    cJSON *requests = add_object(&b, summary, "requests");
    cJSON *current = add_object(&b, requests, "current");
    add_cpu(&b, current, "cpu", t.cpu_current);
    add_memory(&b, current, "memory", t.memory_current);
    cJSON *recommended = add_object(&b, requests, "recommended");
    add_cpu(&b, recommended, "cpu", t.cpu_recommended);
    add_memory(&b, recommended, "memory", t.memory_recommended);
    cJSON *confidence = add_object(&b, summary, "confidence");
    for (int c = TL_CONFIDENCE_HIGH; c >= TL_CONFIDENCE_NONE; c--)
        add_number(&b, confidence, tl_confidence_name((enum tl_confidence)c),
                   (double)t.by_confidence[c]);

    cJSON *workloads = b.ok ? cJSON_AddArrayToObject(doc, "workloads") : NULL;
    b.ok = workloads != NULL;
    for (size_t i = 0; b.ok && i < report->count; i++)
        add_workload(&b, workloads, &report->workloads[i]);
    if (!b.ok) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

/* ---- YAML ---- */

/* A date or date-time: YAML 1.1 parsers other than Kubernetes' (PyYAML) read it as a timestamp. */
static bool looks_like_date(const char *text)
{
    for (size_t i = 0; i < 4; i++) {
        if (!isdigit((unsigned char)text[i]))
            return false;
    }
    return text[4] == '-' && isdigit((unsigned char)text[5]);
}

/*
 * Whether text, written plain, reads back as this same string (see the header). "<<" would be
 * a merge key, and dates are quoted for the parsers that read them as timestamps.
 */
static bool plain_reads_back(const char *text)
{
    size_t len = strlen(text);
    if (len == 0 || len > 512 || strchr(text, '\n') || strchr(text, '\r') ||
        strcmp(text, "<<") == 0 || looks_like_date(text))
        return false;
    cJSON *back = NULL;
    if (tl_yaml_to_json(text, len, &back, NULL, 0) != TL_OK)
        return false;
    const cJSON *doc = cJSON_GetArrayItem(back, 0);
    bool same =
        cJSON_GetArraySize(back) == 1 && cJSON_IsString(doc) && strcmp(doc->valuestring, text) == 0;
    cJSON_Delete(back);
    return same;
}

static bool emit_scalar(yaml_emitter_t *em, const char *text, bool is_string)
{
    yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
    if (is_string && !plain_reads_back(text))
        style = strchr(text, '\n') ? YAML_LITERAL_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    bool plain = style == YAML_PLAIN_SCALAR_STYLE;
    size_t len = strlen(text);
    if (len > INT32_MAX)
        return false;
    yaml_event_t ev;
    /* libyaml takes its own copy of the value. */
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)(uintptr_t)text, (int)len,
                                      plain, !plain, style))
        return false;
    return yaml_emitter_emit(em, &ev) != 0;
}

/* The shortest decimal text that reads back as exactly v. */
static bool number_text(double v, char *buf, size_t len)
{
    if (!isfinite(v))
        return false;
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(buf, len, "%.0f", v);
        return true;
    }
    for (int precision = 15; precision <= 17; precision++) {
        snprintf(buf, len, "%.*g", precision, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return true;
}

static enum tl_err emit_node(yaml_emitter_t *em, const cJSON *node)
{
    yaml_event_t ev;
    char buf[64];
    if (cJSON_IsObject(node) || cJSON_IsArray(node)) {
        bool mapping = cJSON_IsObject(node);
        bool empty = node->child == NULL;
        int ok = mapping ? yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
                                                               empty ? YAML_FLOW_MAPPING_STYLE
                                                                     : YAML_BLOCK_MAPPING_STYLE)
                         : yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                                                empty ? YAML_FLOW_SEQUENCE_STYLE
                                                                      : YAML_BLOCK_SEQUENCE_STYLE);
        if (!ok || !yaml_emitter_emit(em, &ev))
            return TL_EIO;
        const cJSON *child;
        cJSON_ArrayForEach(child, node)
        {
            if (mapping && !emit_scalar(em, child->string ? child->string : "", true))
                return TL_EIO;
            enum tl_err result = emit_node(em, child);
            if (result != TL_OK)
                return result;
        }
        ok = mapping ? yaml_mapping_end_event_initialize(&ev)
                     : yaml_sequence_end_event_initialize(&ev);
        return ok && yaml_emitter_emit(em, &ev) ? TL_OK : TL_EIO;
    }
    if (cJSON_IsString(node))
        return emit_scalar(em, node->valuestring, true) ? TL_OK : TL_EIO;
    if (cJSON_IsNumber(node)) {
        if (!number_text(node->valuedouble, buf, sizeof(buf)))
            return TL_EINVAL;
        return emit_scalar(em, buf, false) ? TL_OK : TL_EIO;
    }
    if (cJSON_IsBool(node))
        return emit_scalar(em, cJSON_IsTrue(node) ? "true" : "false", false) ? TL_OK : TL_EIO;
    if (cJSON_IsNull(node))
        return emit_scalar(em, "null", false) ? TL_OK : TL_EIO;
    return TL_EINVAL;
}

enum tl_err tl_scan_output_yaml(const cJSON *doc, FILE *out)
{
    yaml_emitter_t em;
    yaml_event_t ev;
    if (!yaml_emitter_initialize(&em))
        return TL_ENOMEM;
    yaml_emitter_set_output_file(&em, out);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_indent(&em, 2);
    yaml_emitter_set_width(&em, -1);
    enum tl_err result = TL_EIO;
    if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) ||
        !yaml_emitter_emit(&em, &ev) ||
        !yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) ||
        !yaml_emitter_emit(&em, &ev))
        goto out;
    result = emit_node(&em, doc);
    if (result != TL_OK)
        goto out;
    result = TL_EIO;
    if (!yaml_document_end_event_initialize(&ev, 1) || !yaml_emitter_emit(&em, &ev) ||
        !yaml_stream_end_event_initialize(&ev) || !yaml_emitter_emit(&em, &ev) ||
        !yaml_emitter_flush(&em))
        goto out;
    result = TL_OK;
out:
    if (result == TL_EIO && em.error == YAML_MEMORY_ERROR)
        result = TL_ENOMEM;
    yaml_emitter_delete(&em);
    return result;
}

/* ---- Table ---- */

static const char *const headers[NCOLS] = {"NAMESPACE", "KIND/NAME",  "CONTAINER", "CPU",
                                           "MEMORY",    "SAVINGS/MO", "CONFIDENCE"};
enum { COL_NS, COL_NAME, COL_CONTAINER, COL_CPU, COL_MEMORY, COL_SAVINGS, COL_CONFIDENCE };

struct cells {
    char text[NCOLS][CELL_MAX];
};

static void change_text(const char *from, const char *to, char *buf, size_t len)
{
    snprintf(buf, len, "%s\xE2\x86\x92%s", from, to);
}

static void row_cells(const struct tl_scan_workload *w, const struct tl_scan_container *c,
                      struct cells *out)
{
    char a[TL_QUANTITY_STR_MAX];
    char b[TL_QUANTITY_STR_MAX];
    snprintf(out->text[COL_NS], CELL_MAX, "%s", w->ns);
    snprintf(out->text[COL_NAME], CELL_MAX, "%s/%s", tl_workload_kind_name(w->kind), w->name);
    snprintf(out->text[COL_CONTAINER], CELL_MAX, "%s", c->name);
    cpu_text(c->current.cpu_request, a, sizeof(a));
    cpu_text(c->recommended.cpu_request, b, sizeof(b));
    change_text(a, b, out->text[COL_CPU], CELL_MAX);
    memory_text(c->current.memory_request, a, sizeof(a));
    memory_text(c->recommended.memory_request, b, sizeof(b));
    change_text(a, b, out->text[COL_MEMORY], CELL_MAX);
    if (counts_for_pod(c))
        usd_text(c->savings_usd, out->text[COL_SAVINGS], CELL_MAX);
    else
        snprintf(out->text[COL_SAVINGS], CELL_MAX, "-");
    snprintf(out->text[COL_CONFIDENCE], CELL_MAX, "%s", tl_confidence_name(c->confidence));
}

/*
 * Column widths: each column as wide as its longest cell; when that passes the table width, the
 * name-like columns (the only ones without a short fixed form) give up columns, widest first,
 * down to MIN_NAME_WIDTH, and their cells are cut with an ellipsis.
 */
static void column_widths(const struct tl_scan_report *report, size_t widths[NCOLS])
{
    for (size_t k = 0; k < NCOLS; k++)
        widths[k] = display_width(headers[k]);
    struct cells cells;
    for (size_t i = 0; i < report->count; i++) {
        const struct tl_scan_workload *w = &report->workloads[i];
        for (size_t j = 0; j < w->ncontainers; j++) {
            row_cells(w, &w->containers[j], &cells);
            for (size_t k = 0; k < NCOLS; k++) {
                size_t width = display_width(cells.text[k]);
                if (width > widths[k])
                    widths[k] = width;
            }
        }
    }
    size_t total = (size_t)COL_GAP * (NCOLS - 1);
    for (size_t k = 0; k < NCOLS; k++)
        total += widths[k];
    static const size_t shrinkable[] = {COL_NAME, COL_NS, COL_CONTAINER};
    while (total > TL_SCAN_TABLE_WIDTH) {
        size_t widest = shrinkable[0];
        for (size_t s = 1; s < sizeof(shrinkable) / sizeof(shrinkable[0]); s++) {
            if (widths[shrinkable[s]] > widths[widest])
                widest = shrinkable[s];
        }
        if (widths[widest] <= MIN_NAME_WIDTH)
            break;
        widths[widest]--;
        total--;
    }
}

static void print_row(FILE *out, struct cells *cells, const size_t widths[NCOLS])
{
    for (size_t k = 0; k < NCOLS; k++) {
        truncate_cell(cells->text[k], CELL_MAX, widths[k]);
        size_t width = display_width(cells->text[k]);
        size_t pad = widths[k] > width ? widths[k] - width : 0;
        if (k > 0)
            fprintf(out, "%*s", COL_GAP, "");
        if (k == COL_SAVINGS)
            fprintf(out, "%*s%s", (int)pad, "", cells->text[k]);
        else if (k == NCOLS - 1)
            fputs(cells->text[k], out);
        else
            fprintf(out, "%s%*s", cells->text[k], (int)pad, "");
    }
    fputc('\n', out);
}

static void write_table(const struct tl_scan_report *report, FILE *out)
{
    struct tl_scan_totals t;
    tl_scan_report_totals(report, &t);
    if (t.containers == 0) {
        fprintf(out, "No workloads found in %zu namespace%s.\n", report->namespaces,
                report->namespaces == 1 ? "" : "s");
        return;
    }
    size_t widths[NCOLS];
    column_widths(report, widths);
    struct cells cells;
    for (size_t k = 0; k < NCOLS; k++)
        snprintf(cells.text[k], CELL_MAX, "%s", headers[k]);
    print_row(out, &cells, widths);
    for (size_t i = 0; i < report->count; i++) {
        const struct tl_scan_workload *w = &report->workloads[i];
        for (size_t j = 0; j < w->ncontainers; j++) {
            row_cells(w, &w->containers[j], &cells);
            print_row(out, &cells, widths);
        }
    }
    char usd[48];
    usd_text(t.savings_usd, usd, sizeof(usd));
    fprintf(
        out,
        "\nTOTAL  %zu workload%s, %zu container%s in %zu namespace%s; estimated savings %s/month\n",
        t.workloads, t.workloads == 1 ? "" : "s", t.containers, t.containers == 1 ? "" : "s",
        report->namespaces, report->namespaces == 1 ? "" : "s", usd);
    fprintf(out,
            "       requests of all replicas: CPU %.2f\xE2\x86\x92%.2f cores, memory "
            "%.1f\xE2\x86\x92%.1f GiB\n",
            t.cpu_current, t.cpu_recommended, t.memory_current / GIB, t.memory_recommended / GIB);
    size_t unknown = t.by_confidence[TL_CONFIDENCE_NONE];
    if (unknown > 0)
        fprintf(out,
                "NOTE   %zu workload%s no usage history in Prometheus (confidence None): "
                "%s values are left as they are.\n",
                unknown, unknown == 1 ? " has" : "s have", unknown == 1 ? "its" : "their");
}

/* ---- CSV ---- */

/* RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled. */
static void csv_field(FILE *out, const char *text, bool last)
{
    if (strpbrk(text, ",\"\r\n")) {
        fputc('"', out);
        for (const char *p = text; *p; p++) {
            if (*p == '"')
                fputc('"', out);
            fputc(*p, out);
        }
        fputc('"', out);
    }
    else {
        fputs(text, out);
    }
    fputc(last ? '\n' : ',', out);
}

/* Cores with millicore precision, bytes whole; empty when unset. */
static void csv_cores(FILE *out, double cores)
{
    char buf[48] = "";
    if (cores > 0)
        snprintf(buf, sizeof(buf), "%.3f", cores);
    csv_field(out, buf, false);
}

static void csv_bytes(FILE *out, double bytes)
{
    char buf[48] = "";
    if (bytes > 0)
        snprintf(buf, sizeof(buf), "%.0f", bytes);
    csv_field(out, buf, false);
}

static void write_csv(const struct tl_scan_report *report, FILE *out)
{
    fputs("namespace,kind,name,container,type,replicas,confidence,cpu_request_cores,"
          "cpu_request_recommended_cores,cpu_limit_cores,cpu_limit_recommended_cores,"
          "memory_request_bytes,memory_request_recommended_bytes,memory_limit_bytes,"
          "memory_limit_recommended_bytes,monthly_savings_usd,explanation\n",
          out);
    char buf[64];
    for (size_t i = 0; i < report->count; i++) {
        const struct tl_scan_workload *w = &report->workloads[i];
        for (size_t j = 0; j < w->ncontainers; j++) {
            const struct tl_scan_container *c = &w->containers[j];
            csv_field(out, w->ns, false);
            csv_field(out, tl_workload_kind_name(w->kind), false);
            csv_field(out, w->name, false);
            csv_field(out, c->name, false);
            csv_field(out, type_name(c->type), false);
            snprintf(buf, sizeof(buf), "%d", w->replicas);
            csv_field(out, buf, false);
            csv_field(out, tl_confidence_name(c->confidence), false);
            csv_cores(out, c->current.cpu_request);
            csv_cores(out, c->recommended.cpu_request);
            csv_cores(out, c->current.cpu_limit);
            csv_cores(out, c->recommended.cpu_limit);
            csv_bytes(out, c->current.memory_request);
            csv_bytes(out, c->recommended.memory_request);
            csv_bytes(out, c->current.memory_limit);
            csv_bytes(out, c->recommended.memory_limit);
            buf[0] = '\0';
            if (counts_for_pod(c))
                snprintf(buf, sizeof(buf), "%.2f", round(c->savings_usd * 100) / 100 + 0.0);
            csv_field(out, buf, false);
            csv_field(out, c->explanation, true);
        }
    }
}

/* ---- HTML ---- */

static void html_text(FILE *out, const char *text)
{
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&#39;", out);
            break;
        default:
            fputc(*p, out);
        }
    }
}

static const char html_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>Tailor scan report</title>\n<style>\n"
    "body{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;margin:2rem;"
    "color:#1f2328;background:#fff}\n"
    "h1{font-size:1.5rem;margin:0 0 .25rem}\n"
    ".meta{color:#59636e;margin:0 0 1.5rem}\n"
    ".cards{display:flex;flex-wrap:wrap;gap:1rem;margin-bottom:1.5rem}\n"
    ".card{border:1px solid #d1d9e0;border-radius:8px;padding:.75rem 1rem;min-width:10rem}\n"
    ".card b{display:block;font-size:1.4rem}\n"
    ".card span{color:#59636e;font-size:.85rem}\n"
    "table{border-collapse:collapse;width:100%;font-size:.9rem}\n"
    "th,td{border-bottom:1px solid #d1d9e0;padding:.35rem .6rem;text-align:left;"
    "vertical-align:top}\n"
    "th{background:#f6f8fa;position:sticky;top:0}\n"
    "th.sort::after{content:\" \\2195\";color:#8c959f}\n"
    "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    "tr.why td{color:#59636e;font-size:.8rem;border-bottom:2px solid #d1d9e0}\n"
    ".conf{border-radius:1em;padding:0 .5em;font-size:.8rem}\n"
    ".High{background:#dafbe1}.Medium{background:#fff8c5}.Low{background:#ffebe9}"
    ".None{background:#eaeef2}\n"
    ".grow{color:#cf222e}\n"
    "</style>\n</head>\n<body>\n";

static void html_card(FILE *out, const char *value, const char *label)
{
    fputs("<div class=\"card\"><b>", out);
    html_text(out, value);
    fputs("</b><span>", out);
    html_text(out, label);
    fputs("</span></div>\n", out);
}

static void html_cell(FILE *out, const char *cls, const char *text)
{
    if (cls)
        fprintf(out, "<td class=\"%s\">", cls);
    else
        fputs("<td>", out);
    html_text(out, text);
    fputs("</td>", out);
}

static void html_rows(FILE *out, const struct tl_scan_workload *w)
{
    char a[TL_QUANTITY_STR_MAX];
    char b[TL_QUANTITY_STR_MAX];
    char text[CELL_MAX];
    for (size_t j = 0; j < w->ncontainers; j++) {
        const struct tl_scan_container *c = &w->containers[j];
        fputs("<tr>", out);
        html_cell(out, NULL, w->ns);
        snprintf(text, sizeof(text), "%s/%s", tl_workload_kind_name(w->kind), w->name);
        html_cell(out, NULL, text);
        snprintf(text, sizeof(text), "%s%s", c->name,
                 c->type == TL_CONTAINER_INIT      ? " (init)"
                 : c->type == TL_CONTAINER_SIDECAR ? " (sidecar)"
                                                   : "");
        html_cell(out, NULL, text);
        cpu_text(c->current.cpu_request, a, sizeof(a));
        cpu_text(c->recommended.cpu_request, b, sizeof(b));
        change_text(a, b, text, sizeof(text));
        html_cell(out, NULL, text);
        memory_text(c->current.memory_request, a, sizeof(a));
        memory_text(c->recommended.memory_request, b, sizeof(b));
        change_text(a, b, text, sizeof(text));
        html_cell(out, NULL, text);
        cpu_text(c->recommended.cpu_limit, a, sizeof(a));
        memory_text(c->recommended.memory_limit, b, sizeof(b));
        snprintf(text, sizeof(text), "cpu %s, memory %s", a, b);
        html_cell(out, NULL, text);
        if (counts_for_pod(c))
            usd_text(c->savings_usd, text, sizeof(text));
        else
            snprintf(text, sizeof(text), "-");
        html_cell(out, c->savings_usd < -0.005 ? "num grow" : "num", text);
        fprintf(out, "<td><span class=\"conf %s\">%s</span></td></tr>\n",
                tl_confidence_name(c->confidence), tl_confidence_name(c->confidence));
    }
    fputs("<tr class=\"why\"><td colspan=\"8\">", out);
    html_text(out, w->explanation);
    if (w->hpa.present) {
        fputs(" HPA: ", out);
        html_text(out, w->hpa.reason);
    }
    fputs("</td></tr>\n", out);
}

static void write_html(const struct tl_scan_report *report, FILE *out)
{
    struct tl_scan_totals t;
    tl_scan_report_totals(report, &t);
    char text[256];
    char when[32];
    fputs(html_head, out);
    fputs("<h1>Tailor scan report</h1>\n<p class=\"meta\">", out);
    tl_format_time(report->generated_at, when, sizeof(when));
    fprintf(out, "Generated %s", when);
    if (report->context) {
        fputs(" &middot; context ", out);
        html_text(out, report->context);
    }
    if (report->prometheus) {
        fputs(" &middot; Prometheus ", out);
        html_text(out, report->prometheus);
    }
    duration_text(report->history, text, sizeof(text));
    fputs(" &middot; history ", out);
    html_text(out, text);
    if (report->region) {
        fputs(" &middot; prices of ", out);
        html_text(out, report->region);
    }
    fputs("</p>\n<div class=\"cards\">\n", out);
    usd_text(t.savings_usd, text, sizeof(text));
    html_card(out, text, "estimated savings per month");
    snprintf(text, sizeof(text), "%zu / %zu", t.workloads, t.containers);
    html_card(out, text, "workloads / containers");
    snprintf(text, sizeof(text), "%.2f \xE2\x86\x92 %.2f", t.cpu_current, t.cpu_recommended);
    html_card(out, text, "CPU cores requested (all replicas)");
    snprintf(text, sizeof(text), "%.1f \xE2\x86\x92 %.1f", t.memory_current / GIB,
             t.memory_recommended / GIB);
    html_card(out, text, "memory GiB requested (all replicas)");
    snprintf(text, sizeof(text), "%zu / %zu / %zu / %zu", t.by_confidence[TL_CONFIDENCE_HIGH],
             t.by_confidence[TL_CONFIDENCE_MEDIUM], t.by_confidence[TL_CONFIDENCE_LOW],
             t.by_confidence[TL_CONFIDENCE_NONE]);
    html_card(out, text, "confidence high / medium / low / none");
    fputs("</div>\n<table>\n<thead><tr><th class=\"sort\">Namespace</th><th class=\"sort\">"
          "Workload</th><th class=\"sort\">Container</th><th>CPU request</th><th>Memory "
          "request</th><th>Recommended limits</th><th class=\"num sort\">Savings/mo</th>"
          "<th class=\"sort\">Confidence</th></tr></thead>\n<tbody>\n",
          out);
    for (size_t i = 0; i < report->count; i++)
        html_rows(out, &report->workloads[i]);
    fputs("</tbody>\n</table>\n</body>\n</html>\n", out);
}

enum tl_err tl_scan_output_write(const struct tl_scan_report *report, enum tl_scan_format format,
                                 FILE *out)
{
    enum tl_err result = TL_OK;
    switch (format) {
    case TL_SCAN_TABLE:
        write_table(report, out);
        break;
    case TL_SCAN_CSV:
        write_csv(report, out);
        break;
    case TL_SCAN_HTML:
        write_html(report, out);
        break;
    case TL_SCAN_JSON:
    case TL_SCAN_YAML: {
        cJSON *doc = tl_scan_report_json(report);
        if (!doc)
            return TL_ENOMEM;
        if (format == TL_SCAN_YAML) {
            result = tl_scan_output_yaml(doc, out);
        }
        else {
            char *text = cJSON_Print(doc);
            if (text) {
                fputs(text, out);
                fputc('\n', out);
            }
            else {
                result = TL_ENOMEM;
            }
            cJSON_free(text);
        }
        cJSON_Delete(doc);
        break;
    }
    }
    if (result == TL_OK && (fflush(out) != 0 || ferror(out)))
        result = TL_EIO;
    return result;
}
