/* scan_output: the report `tailor scan` prints, its renderings (table, JSON, YAML, CSV, HTML) and
 * the cJSON-to-YAML writer the export command shares. */
#ifndef TL_SCAN_OUTPUT_H
#define TL_SCAN_OUTPUT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "error.h"
#include "objects.h"
#include "policy.h"
#include "recommend.h"

/* The table never gets wider than this many columns (characters, not bytes). */
#define TL_SCAN_TABLE_WIDTH 120

enum tl_scan_format { TL_SCAN_TABLE, TL_SCAN_JSON, TL_SCAN_YAML, TL_SCAN_CSV, TL_SCAN_HTML };

/* Parses "table", "json", "yaml", "csv" or "html"; false, *out untouched, for anything else. */
bool tl_scan_format_parse(const char *text, enum tl_scan_format *out);

/* One container of a scanned workload. Values in cores and bytes; 0 means unset. */
struct tl_scan_container {
    char name[64];
    enum tl_container_type type;
    enum tl_confidence confidence;
    struct tl_resources current;
    struct tl_resources recommended; /* the current values when confidence is None */
    struct tl_resources lower;       /* requests only: below them the container likely starves */
    struct tl_resources upper;       /* requests only: above them they are likely waste */
    struct tl_usage_summary usage;   /* meaningful when confidence is not None */
    double savings_usd;              /* this container's share of the workload's monthly savings */
    char explanation[320];           /* the advice's own sentence */
};

/* HPA advice, as the operator gives it in a Recommendation's status.hpa. */
struct tl_scan_hpa {
    bool present;  /* there is advice */
    bool existing; /* it tunes an HPA that exists; else it suggests a new one */
    int min_replicas;
    int max_replicas;
    int target_percent;
    char metric[16]; /* "cpu" or "memory" */
    char reason[256];
};

struct tl_scan_workload {
    char ns[64];
    enum tl_workload_kind kind;
    char name[254];
    int replicas; /* what savings are multiplied by: the HPA's current count when one scales it */
    enum tl_confidence confidence;
    char explanation[320];
    double savings_usd;  /* per month, all replicas; negative when the advice costs more */
    double cpu_saved;    /* cores, all replicas */
    double memory_saved; /* bytes, all replicas */
    struct tl_scan_hpa hpa;
    const struct tl_scan_container *containers; /* borrowed */
    size_t ncontainers;
};

/* Everything a rendering shows. Every pointer is borrowed; strings may be NULL when unknown. */
struct tl_scan_report {
    const struct tl_scan_workload *workloads; /* in the order they are printed */
    size_t count;
    size_t namespaces;      /* namespaces scanned */
    const char *context;    /* the kubeconfig context */
    const char *prometheus; /* the Prometheus URL, without credentials */
    double history;         /* seconds of history asked for */
    const char *region;     /* whose prices the savings use */
    double generated_at;    /* seconds since the epoch */
};

/* Sums over a report. Requests are per pod times replicas; init containers are left out. */
struct tl_scan_totals {
    size_t workloads;
    size_t containers;
    double cpu_current; /* cores */
    double cpu_recommended;
    double memory_current; /* bytes */
    double memory_recommended;
    double savings_usd;
    size_t by_confidence[4]; /* workloads, indexed by enum tl_confidence */
};

void tl_scan_report_totals(const struct tl_scan_report *report, struct tl_scan_totals *out);

/*
 * The report as the documented JSON document (docs/scan.md): apiVersion tailor.dev/v1alpha1,
 * kind ScanReport, metadata, summary and workloads whose containers have the shape of a
 * Recommendation's status.containers. Caller frees with cJSON_Delete; NULL when out of memory.
 */
cJSON *tl_scan_report_json(const struct tl_scan_report *report);

/*
 * Writes the report to out in the given format: the table fits TL_SCAN_TABLE_WIDTH columns and
 * ends with a totals line; CSV has a header and one row per container (RFC 4180 quoting); HTML is
 * one standalone page (inline CSS, no scripts, every text escaped). TL_EIO when writing fails,
 * TL_ENOMEM when out of memory.
 */
enum tl_err tl_scan_output_write(const struct tl_scan_report *report, enum tl_scan_format format,
                                 FILE *out);

/*
 * Writes doc (borrowed) as one block-style YAML document (no "---" line) that reads back, with
 * the YAML 1.1 rules Kubernetes uses (yaml_json.h), as the same JSON: a string is written plain
 * only when reading it back gives the same string ("250m", "web"), quoted otherwise ("on",
 * "1.0", "a: b"), and as a literal block when it has several lines. Comments cannot be kept: a
 * cJSON tree has none. TL_EIO when writing fails, TL_EINVAL for a number JSON cannot spell.
 */
enum tl_err tl_scan_output_yaml(const cJSON *doc, FILE *out);

#endif
