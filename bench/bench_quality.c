/*
 * bench_quality: how good is Tailor's advice? Replays real and generated usage traces through
 * the recommender as the controller would run it, and through two published baselines (the
 * Kubernetes VPA recommender's defaults and Robusta KRR's "simple" strategy), then scores every
 * day's advice on the day that follows it.
 *
 *   bench_quality [--sweep] [--days TRACE] [TRACE_DIR]
 *
 * TRACE_DIR holds INDEX.csv and the series it lists (kruize_demos/NAME.csv,
 * bitbrains_rnd/MONTH/VM.csv); without it only the generated profiles run. --sweep scores a grid
 * of CPU and memory rules instead of the standard set; --days prints every day of one trace
 * (named as in INDEX.csv, or gen/<profile>). docs/recommender.md explains the method, the
 * assumptions and the results.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "histogram.h"
#include "recommend.h"

#define MINUTE 60.0
#define HOUR   3600.0
#define DAY    86400.0
#define KIB    1024.0
#define MIB    1048576.0
#define GIB    1073741824.0

#define MAX_TRACES 64
#define MAX_FIELDS 64
/* The policy's history window: OOM kills older than this are forgotten, KRR looks this far. */
#define HISTORY_WINDOW (14 * DAY)

/* ------------------------------------------------------------------------------------------ */
/* Traces                                                                                      */
/* ------------------------------------------------------------------------------------------ */

struct trace {
    char name[80];  /* path under the trace directory, or gen/<profile> */
    char label[40]; /* a short name for tables */
    char shape[24]; /* INDEX.csv's category, or the generated profile */
    bool real;
    double step; /* median seconds between samples */
    size_t n;
    size_t cap;
    double *t;
    double *cpu;      /* cores, mean over the step */
    double *mem;      /* bytes, mean over the step */
    double *mem_peak; /* bytes, largest in the step (= mem where the source has no maximum) */
    struct tl_resources current; /* what was deployed, where the source says */
};

static void trace_free(struct trace *tr)
{
    free(tr->t);
    free(tr->cpu);
    free(tr->mem);
    free(tr->mem_peak);
    memset(tr, 0, sizeof(*tr));
}

static bool grow(double **array, size_t cap)
{
    double *bigger = realloc(*array, cap * sizeof(**array));
    if (!bigger)
        return false;
    *array = bigger;
    return true;
}

/* Appends one sample; samples at or before the previous time (duplicates) are dropped. */
static bool trace_push(struct trace *tr, double t, double cpu, double mem, double mem_peak)
{
    if (tr->n > 0 && t <= tr->t[tr->n - 1])
        return true;
    if (tr->n == tr->cap) {
        size_t cap = tr->cap ? tr->cap * 2 : 1024;
        if (!grow(&tr->t, cap) || !grow(&tr->cpu, cap) || !grow(&tr->mem, cap) ||
            !grow(&tr->mem_peak, cap))
            return false;
        tr->cap = cap;
    }
    tr->t[tr->n] = t;
    tr->cpu[tr->n] = cpu;
    tr->mem[tr->n] = mem;
    tr->mem_peak[tr->n] = fmax(mem, mem_peak);
    tr->n++;
    return true;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

static void trace_finish(struct trace *tr)
{
    tr->step = 0;
    if (tr->n < 2)
        return;
    double *gaps = malloc((tr->n - 1) * sizeof(*gaps));
    if (!gaps)
        return;
    for (size_t i = 1; i < tr->n; i++)
        gaps[i - 1] = tr->t[i] - tr->t[i - 1];
    qsort(gaps, tr->n - 1, sizeof(*gaps), compare_doubles);
    tr->step = gaps[(tr->n - 1) / 2];
    free(gaps);
}

/* Splits one CSV line in place: quoted fields may hold the separator ("" is a quote). */
static size_t split_fields(char *line, char sep, char **fields, size_t max)
{
    size_t count = 0;
    char *p = line;
    while (count < max) {
        char *out = p;
        fields[count++] = p;
        bool quoted = *p == '"';
        if (quoted)
            p++;
        while (*p && *p != '\n' && *p != '\r' && (quoted || *p != sep)) {
            if (quoted && *p == '"') {
                if (p[1] == '"') {
                    *out++ = '"';
                    p += 2;
                    continue;
                }
                quoted = false;
                p++;
                continue;
            }
            *out++ = *p++;
        }
        bool more = *p == sep;
        *out = '\0';
        if (!more)
            break;
        p++;
    }
    return count;
}

static int field_index(char **fields, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(fields[i], name) == 0)
            return (int)i;
    }
    return -1;
}

/* A number, or NAN for an empty or malformed field (leading/trailing blanks allowed). */
static double parse_number(const char *text)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || errno != 0 || !isfinite(v))
        return NAN;
    while (*end == ' ' || *end == '\t')
        end++;
    return *end == '\0' ? v : NAN;
}

static bool parse_long(const char **p, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(*p, &end, 10);
    if (end == *p || errno != 0)
        return false;
    *p = end;
    *out = v;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "chrono-compatible
 * low-level date algorithms", days_from_civil). */
static long days_from_civil(long y, long m, long d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static double epoch_of(long y, long mon, long d, long hh, long mm, long ss)
{
    return (double)days_from_civil(y, mon, d) * DAY + (double)(hh * 3600 + mm * 60 + ss);
}

static bool parse_clock(const char **p, long *hh, long *mm, long *ss)
{
    return parse_long(p, hh) && *(*p)++ == ':' && parse_long(p, mm) && *(*p)++ == ':' &&
           parse_long(p, ss);
}

/* Kruize timestamps: "2023-03-15 13:00:01 +0000 UTC" or "Wed Mar 15 09:27:43 UTC 2023". */
static double parse_kruize_time(const char *text)
{
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const char *p = text;
    long y = 0, mon = 0, d = 0, hh = 0, mm = 0, ss = 0;
    if (strlen(text) > 10 && text[4] == '-') {
        if (!parse_long(&p, &y) || *p++ != '-')
            return NAN;
        if (!parse_long(&p, &mon) || *p++ != '-' || !parse_long(&p, &d) ||
            !parse_clock(&p, &hh, &mm, &ss))
            return NAN;
        return mon < 1 || mon > 12 || d < 1 ? NAN : epoch_of(y, mon, d, hh, mm, ss);
    }
    if (strlen(text) < 24)
        return NAN;
    for (size_t i = 0; i < 12; i++) {
        if (strncmp(text + 4, months[i], 3) == 0)
            mon = (long)i + 1;
    }
    p = text + 8;
    if (mon == 0 || !parse_long(&p, &d) || !parse_clock(&p, &hh, &mm, &ss))
        return NAN;
    while (*p == ' ')
        p++;
    if (strncmp(p, "UTC", 3) != 0)
        return NAN;
    p += 3;
    if (!parse_long(&p, &y))
        return NAN;
    return epoch_of(y, mon, d, hh, mm, ss);
}

/* The first non-empty value of a column, as the deployed request or limit; 0 if none. */
static void remember_first(double *slot, bool *seen, double value)
{
    if (!*seen && isfinite(value)) {
        *slot = value;
        *seen = true;
    }
}

/* Kruize/koku ROS reports: 15-minute rows, columns read by header name. */
static bool load_kruize(struct trace *tr, FILE *f)
{
    enum { START, CPU_AVG, MEM_AVG, MEM_MAX, CPU_REQ, CPU_LIM, MEM_REQ, MEM_LIM, NCOLS };
    static const char *const names[NCOLS] = {"interval_start",
                                             "cpu_usage_container_avg",
                                             "memory_usage_container_avg",
                                             "memory_usage_container_max",
                                             "cpu_request_container_avg",
                                             "cpu_limit_container_avg",
                                             "memory_request_container_avg",
                                             "memory_limit_container_avg"};
    char *line = NULL;
    size_t len = 0;
    char *fields[MAX_FIELDS];
    int col[NCOLS];
    bool ok = false;
    bool seen[4] = {false, false, false, false};
    if (getline(&line, &len, f) < 0)
        goto out;
    size_t count = split_fields(line, ',', fields, MAX_FIELDS);
    for (size_t c = 0; c < NCOLS; c++) {
        col[c] = field_index(fields, count, names[c]);
        if (col[c] < 0) {
            fprintf(stderr, "%s: no column %s\n", tr->name, names[c]);
            goto out;
        }
    }
    while (getline(&line, &len, f) >= 0) {
        count = split_fields(line, ',', fields, MAX_FIELDS);
        double v[NCOLS];
        for (size_t c = 1; c < NCOLS; c++)
            v[c] = (size_t)col[c] < count ? parse_number(fields[col[c]]) : NAN;
        double t = (size_t)col[START] < count ? parse_kruize_time(fields[col[START]]) : NAN;
        if (!isfinite(t) || !isfinite(v[CPU_AVG]) || !isfinite(v[MEM_AVG]))
            continue;
        remember_first(&tr->current.cpu_request, &seen[0], v[CPU_REQ]);
        remember_first(&tr->current.cpu_limit, &seen[1], v[CPU_LIM]);
        remember_first(&tr->current.memory_request, &seen[2], v[MEM_REQ]);
        remember_first(&tr->current.memory_limit, &seen[3], v[MEM_LIM]);
        double peak = isfinite(v[MEM_MAX]) ? v[MEM_MAX] : v[MEM_AVG];
        if (!trace_push(tr, t, v[CPU_AVG], v[MEM_AVG], peak))
            goto out;
    }
    ok = tr->n > 0;
out:
    free(line);
    return ok;
}

/* Bitbrains GWA-T-12: ";\t"-separated, epoch seconds, CPU in MHz, memory in KB. */
static bool load_bitbrains(struct trace *tr, FILE *f)
{
    char *line = NULL;
    size_t len = 0;
    char *fields[MAX_FIELDS];
    bool ok = false;
    if (getline(&line, &len, f) < 0) /* header */
        goto out;
    while (getline(&line, &len, f) >= 0) {
        if (split_fields(line, ';', fields, MAX_FIELDS) < 7)
            continue;
        double t = parse_number(fields[0]);
        double cores = parse_number(fields[1]);
        double capacity = parse_number(fields[2]);
        double used = parse_number(fields[3]);
        double mem_capacity = parse_number(fields[5]);
        double mem_used = parse_number(fields[6]);
        if (!isfinite(t) || !(cores > 0) || !(capacity > 0) || !isfinite(used) ||
            !isfinite(mem_used))
            continue;
        double mhz_per_core = capacity / cores;
        /* The VM's provisioned size at the start is its request and its memory limit (it cannot
         * use more memory than it has). */
        if (tr->n == 0 && mem_capacity > 0) {
            tr->current.cpu_request = cores;
            tr->current.memory_request = mem_capacity * KIB;
            tr->current.memory_limit = mem_capacity * KIB;
        }
        if (!trace_push(tr, t, used / mhz_per_core, mem_used * KIB, mem_used * KIB))
            goto out;
    }
    ok = tr->n > 0;
out:
    free(line);
    return ok;
}

static bool load_file(struct trace *tr, const char *dir, const char *file, const char *shape)
{
    char path[512];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= sizeof(path))
        return false;
    bool kruize = strncmp(file, "kruize_demos/", 13) == 0;
    bool bitbrains = strncmp(file, "bitbrains_rnd/", 14) == 0;
    if (!kruize && !bitbrains) {
        fprintf(stderr, "skipping %s: no reader for this source\n", file);
        return false;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "skipping %s: %s\n", path, strerror(errno));
        return false;
    }
    memset(tr, 0, sizeof(*tr));
    snprintf(tr->name, sizeof(tr->name), "%s", file);
    snprintf(tr->shape, sizeof(tr->shape), "%s", shape);
    /* kruize_demos/eap-app_deploymentconfig_america.csv -> kruize/eap-app;
     * bitbrains_rnd/2013-8/97.csv -> bitbrains/2013-8/97 */
    const char *base = strchr(file, '/') + 1;
    size_t keep = kruize ? strcspn(base, "_") : strcspn(base, ".");
    snprintf(tr->label, sizeof(tr->label), "%s/%.*s", kruize ? "kruize" : "bitbrains", (int)keep,
             base);
    tr->real = true;
    bool ok = kruize ? load_kruize(tr, f) : load_bitbrains(tr, f);
    fclose(f);
    if (!ok) {
        fprintf(stderr, "skipping %s: no usable rows\n", file);
        trace_free(tr);
        return false;
    }
    trace_finish(tr);
    return true;
}

/* Loads every series INDEX.csv lists that has a reader; returns how many. */
static size_t load_index(const char *dir, struct trace *traces, size_t max)
{
    char path[512];
    int n = snprintf(path, sizeof(path), "%s/INDEX.csv", dir);
    if (n < 0 || (size_t)n >= sizeof(path))
        return 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "no traces: %s: %s\n", path, strerror(errno));
        return 0;
    }
    char *line = NULL;
    size_t len = 0;
    char *fields[MAX_FIELDS];
    size_t loaded = 0;
    int file_col = -1, shape_col = -1;
    if (getline(&line, &len, f) >= 0) {
        size_t count = split_fields(line, ',', fields, MAX_FIELDS);
        file_col = field_index(fields, count, "file");
        shape_col = field_index(fields, count, "category");
    }
    while (file_col >= 0 && shape_col >= 0 && loaded < max && getline(&line, &len, f) >= 0) {
        size_t count = split_fields(line, ',', fields, MAX_FIELDS);
        if ((size_t)file_col >= count || (size_t)shape_col >= count)
            continue;
        if (load_file(&traces[loaded], dir, fields[file_col], fields[shape_col]))
            loaded++;
    }
    free(line);
    fclose(f);
    return loaded;
}

/* SplitMix64 (Steele, Lea, Flood 2014): a fixed seed gives the same profiles on every run. */
static uint64_t rng_state = 0x7461696c6f72ULL;

static double uniform(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

/* A standard normal deviate (Box-Muller). */
static double normal(void)
{
    double u = fmax(uniform(), 1e-12);
    return sqrt(-2 * log(u)) * cos(2 * M_PI * uniform());
}

enum profile { STEADY, DIURNAL, SPIKY, LEAK, ON_OFF, IDLE, NPROFILES };

static const char *const profile_names[NPROFILES] = {"steady", "diurnal", "spiky",
                                                     "leak",   "on/off",  "idle"};

/* One minute of usage of a generated profile at time t (seconds from the start). */
static void profile_sample(enum profile p, double t, double *cpu, double *mem)
{
    double day_phase = fmod(t, DAY) / DAY;
    switch (p) {
    case STEADY:
        *cpu = 0.25 * (1 + 0.08 * normal());
        *mem = 400 * MIB * (1 + 0.01 * normal());
        return;
    case DIURNAL: {
        double load = 0.5 - 0.5 * cos(2 * M_PI * day_phase); /* peaks at midday */
        *cpu = 0.1 + 0.9 * load + 0.05 * normal();
        *mem = 500 * MIB + 300 * MIB * load + 5 * MIB * normal();
        return;
    }
    case SPIKY: {
        /* Five-minute bursts every three hours: 2.8% of the time, hidden below a p95. */
        bool burst = fmod(t, 3 * HOUR) < 5 * MINUTE;
        *cpu = burst ? 2 + 0.3 * normal() : 0.08 + 0.01 * normal();
        *mem = (burst ? 500 * MIB : 300 * MIB) + 5 * MIB * normal();
        return;
    }
    case LEAK:
        /* 40 MiB a day from 200 MiB, restarted every nine days. */
        *cpu = 0.15 * (1 + 0.1 * normal());
        *mem = 200 * MIB + 40 * MIB * fmod(t, 9 * DAY) / DAY + 2 * MIB * normal();
        return;
    case ON_OFF: {
        /* A batch job: 8 hours on, 28 off, so some days have no run at all. */
        bool on = fmod(t, 36 * HOUR) < 8 * HOUR;
        *cpu = on ? 1.2 + 0.1 * normal() : 0.02 + 0.002 * normal();
        *mem = (on ? 1.5 * GIB : 300 * MIB) + 10 * MIB * normal();
        return;
    }
    case IDLE:
    case NPROFILES:
        break;
    }
    *cpu = 0.003 + 0.0005 * normal();
    *mem = 60 * MIB + MIB * normal();
}

/* What a developer might have deployed before any advice (the starting point of Auto mode). */
static const struct tl_resources profile_current[NPROFILES] = {
    [STEADY] = {.cpu_request = 0.5, .memory_request = GIB, .memory_limit = GIB},
    [DIURNAL] = {.cpu_request = 1, .memory_request = GIB, .memory_limit = GIB},
    [SPIKY] = {.cpu_request = 0.5, .memory_request = 512 * MIB, .memory_limit = GIB},
    [LEAK] = {.cpu_request = 0.5, .memory_request = 512 * MIB, .memory_limit = GIB},
    [ON_OFF] = {.cpu_request = 1, .memory_request = GIB, .memory_limit = 2 * GIB},
    [IDLE] = {.cpu_request = 0.1, .memory_request = 256 * MIB, .memory_limit = 256 * MIB},
};

#define GENERATED_DAYS 21

static bool generate(struct trace *tr, enum profile p)
{
    memset(tr, 0, sizeof(*tr));
    snprintf(tr->name, sizeof(tr->name), "gen/%s", profile_names[p]);
    snprintf(tr->label, sizeof(tr->label), "gen/%s", profile_names[p]);
    snprintf(tr->shape, sizeof(tr->shape), "%s", profile_names[p]);
    tr->current = profile_current[p];
    for (long minute = 0; minute < (long)(GENERATED_DAYS * DAY / MINUTE); minute++) {
        double t = (double)minute * MINUTE;
        double cpu, mem;
        profile_sample(p, t, &cpu, &mem);
        if (!trace_push(tr, t, fmax(cpu, 0), fmax(mem, 0), fmax(mem, 0))) {
            trace_free(tr);
            return false;
        }
    }
    trace_finish(tr);
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Algorithms                                                                                  */
/* ------------------------------------------------------------------------------------------ */

enum algo_kind { ALGO_TAILOR, ALGO_VPA, ALGO_KRR };

struct algo {
    const char *name;
    double half_life;                  /* Tailor: of both histograms, seconds; 0: the library's */
    struct tl_recommend_policy policy; /* Tailor only */
    enum algo_kind kind;
    bool applied;    /* Tailor: each day's advice becomes the deployed values (Auto mode) */
    bool last_ratio; /* Tailor, applied: KeepRatio sees the last advice's ratio, not the user's */
};

/*
 * VPA recommender defaults (kubernetes/autoscaler, vertical-pod-autoscaler/pkg/recommender/logic/
 * recommender.go and model/aggregations_config.go): CPU target = p90 of a decaying histogram of
 * CPU samples (24 h half-life), memory target = p90 of a decaying histogram of per-24 h memory
 * peaks, both plus a 15% margin, at least 25m and 250Mi. CPU samples weigh the CPU request
 * (model/aggregate_container_state.go); an OOM kill adds a peak of max(1.2 x memory,
 * memory + 100Mi) (model/container.go).
 */
#define VPA_PERCENTILE   0.90
#define VPA_MARGIN       1.15
#define VPA_MIN_CPU      0.025
#define VPA_MIN_MEMORY   (250 * MIB)
#define VPA_OOM_RATIO    1.2
#define VPA_OOM_MIN_BUMP (100 * MIB)
#define VPA_MIN_WEIGHT   0.1

/*
 * KRR "simple" strategy (robusta-dev/krr, robusta_krr/strategies/simple.py; 14-day history in
 * robusta_krr/core/abstract/strategies.py): CPU request = p95 of usage over the history, no CPU
 * limit; memory request = limit = the largest usage in the history plus 15%.
 */
#define KRR_CPU_PERCENTILE 0.95
#define KRR_MEMORY_BUFFER  1.15

#define MAX_OOMS 64

/* What one algorithm carries from one day to the next on one trace. */
struct replay {
    struct tl_resources original; /* what the trace says was deployed */
    struct tl_resources current;  /* deployed: starts as the original, then the applied advice */
    struct tl_resources advice;   /* under evaluation */
    double oom_times[MAX_OOMS];   /* days whose peak crossed the limit: OOM kills */
    size_t ooms;
    double oom_memory; /* the limit at the last kill: the usage the kernel killed at */
    bool oom_today;
    /* Histograms of its own (VPA, or Tailor with another half-life) and their options. */
    bool own;
    struct tl_histogram_options cpu_opts;
    struct tl_histogram_options mem_opts;
    struct tl_histogram cpu;
    struct tl_histogram mem;
    struct tl_histogram vpa_peaks;
    double day_peak; /* VPA: the peak of the aggregation window in progress */
    size_t days;     /* advices given so far */
};

struct score {
    size_t days;
    size_t oom_days;          /* the peak crossed the memory limit */
    size_t over_request_days; /* the peak crossed the memory request */
    size_t samples;
    size_t covered;   /* CPU usage within the request */
    double cpu_short; /* sum of usage above the request, cores */
    double cpu_waste; /* sum of request above usage, cores */
    double mem_waste; /* sum of request above usage, bytes */
    double seconds;   /* spent computing advice */
    size_t advices;
};

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* numpy.percentile's default (linear interpolation between closest ranks), as KRR uses. */
static double linear_percentile(double *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    double h = (double)(n - 1) * p;
    size_t lo = (size_t)floor(h);
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (h - (double)lo) * (sorted[hi] - sorted[lo]);
}

static void advise_krr(const struct trace *tr, size_t end, double now, double *scratch,
                       struct tl_resources *out)
{
    size_t n = 0;
    double peak = 0;
    for (size_t i = end; i-- > 0 && tr->t[i] >= now - HISTORY_WINDOW;) {
        scratch[n++] = tr->cpu[i];
        peak = fmax(peak, tr->mem_peak[i]);
    }
    qsort(scratch, n, sizeof(*scratch), compare_doubles);
    memset(out, 0, sizeof(*out));
    out->cpu_request = linear_percentile(scratch, n, KRR_CPU_PERCENTILE);
    out->memory_request = peak * KRR_MEMORY_BUFFER;
    out->memory_limit = out->memory_request;
}

static void advise_vpa(const struct replay *r, struct tl_resources *out)
{
    memset(out, 0, sizeof(*out));
    out->cpu_request =
        fmax(tl_histogram_percentile(&r->cpu, VPA_PERCENTILE) * VPA_MARGIN, VPA_MIN_CPU);
    out->memory_request =
        fmax(tl_histogram_percentile(&r->vpa_peaks, VPA_PERCENTILE) * VPA_MARGIN, VPA_MIN_MEMORY);
    out->memory_limit = out->memory_request; /* assumption: limit = request (docs) */
}

static void advise_tailor(const struct algo *a, struct replay *r, const struct trace *tr,
                          const struct tl_histogram *cpu, const struct tl_histogram *mem,
                          double now)
{
    struct tl_recommend_policy policy = a->policy;
    policy.sample_interval = tr->step;
    struct tl_usage usage = {
        .cpu = cpu, .memory = mem, .throttled_ratio = -1, .now = now, .window = HISTORY_WINDOW};
    for (size_t k = 0; k < r->ooms; k++) {
        if (r->oom_times[k] >= now - HISTORY_WINDOW)
            usage.oom_kills++;
    }
    usage.oom_memory = usage.oom_kills > 0 ? r->oom_memory : 0;
    struct tl_advice advice;
    tl_recommend_container(&policy, &usage, &r->current, &advice);
    r->advice = advice.recommended;
    if (!a->applied)
        return;
    r->current = advice.recommended;
    if (a->last_ratio)
        return;
    /* The controller keeps the user's limit:request ratio, so the ratio the safety floor produced
     * in one advice does not carry into the next (docs/recommender.md, "Limits"). */
    const struct tl_resources *o = &r->original;
    r->current.cpu_limit = 0;
    r->current.memory_limit = 0;
    if (o->cpu_limit > 0)
        r->current.cpu_limit =
            r->current.cpu_request * (o->cpu_request > 0 ? o->cpu_limit / o->cpu_request : 1);
    if (o->memory_limit > 0)
        r->current.memory_limit = r->current.memory_request *
                                  (o->memory_request > 0 ? o->memory_limit / o->memory_request : 1);
}

/* The VPA weighs a CPU sample by the container's CPU request (at least 0.1 core), so raising the
 * request makes the older history count less; its advice is applied, as Tailor's is. */
static double cpu_weight(const struct algo *a, const struct replay *r)
{
    if (a->kind != ALGO_VPA)
        return 1;
    return fmax(r->days > 0 ? r->advice.cpu_request : r->original.cpu_request, VPA_MIN_WEIGHT);
}

/* Scores the advice in force on samples [from, to): one day. */
static double evaluate(struct replay *r, const struct trace *tr, size_t from, size_t to,
                       double day_start, struct score *s)
{
    const struct tl_resources *adv = &r->advice;
    double peak = 0;
    for (size_t i = from; i < to; i++) {
        s->samples++;
        if (tr->cpu[i] <= adv->cpu_request)
            s->covered++;
        else
            s->cpu_short += tr->cpu[i] - adv->cpu_request;
        s->cpu_waste += fmax(0, adv->cpu_request - tr->cpu[i]);
        s->mem_waste += fmax(0, adv->memory_request - tr->mem[i]);
        peak = fmax(peak, tr->mem_peak[i]);
    }
    s->days++;
    /* No limit: the container cannot be OOM-killed by its own limit (see docs for the caveat). */
    r->oom_today = adv->memory_limit > 0 && peak > adv->memory_limit;
    if (r->oom_today) {
        s->oom_days++;
        if (r->ooms < MAX_OOMS)
            r->oom_times[r->ooms++] = day_start;
        r->oom_memory = adv->memory_limit;
    }
    if (peak > adv->memory_request)
        s->over_request_days++;
    return peak;
}

/* --days TRACE: one line per day and algorithm, to see why a day went wrong. */
static const char *detail_trace;

static void print_day(const struct trace *tr, const struct algo *a, const struct replay *r,
                      double now, size_t from, size_t to, double peak)
{
    size_t covered = 0;
    for (size_t i = from; i < to; i++)
        covered += tr->cpu[i] <= r->advice.cpu_request;
    printf("%-8.1f %-20s cpu %8.3f cov %6.2f%%  mem req %9.1f Mi lim %9.1f Mi peak %9.1f Mi%s\n",
           (now - tr->t[0]) / DAY, a->name, r->advice.cpu_request,
           100.0 * (double)covered / (double)(to - from), r->advice.memory_request / MIB,
           r->advice.memory_limit / MIB, peak / MIB, r->oom_today ? "  OOM" : "");
}

/*
 * Online replay of one trace: every 24 h of trace time after the first day, each algorithm
 * advises from the history so far, and the advice is scored on the next 24 h. Days without
 * samples (gaps) are not scored. Tailor's histograms are fed sample by sample, as the controller
 * feeds them, and shared by every Tailor variant; each baseline keeps its own state.
 */
static bool replay_trace(const struct trace *tr, const struct algo *algos, size_t nalgos,
                         struct score *scores)
{
    struct tl_histogram cpu, mem;
    tl_histogram_init(&cpu, &tl_histogram_cpu_defaults);
    tl_histogram_init(&mem, &tl_histogram_memory_defaults);
    struct replay *rs = calloc(nalgos, sizeof(*rs));
    double *scratch = malloc(tr->n * sizeof(*scratch));
    bool ok = false;
    if (!rs || !scratch)
        goto out;
    for (size_t a = 0; a < nalgos; a++) {
        rs[a].original = tr->current;
        rs[a].current = tr->current;
        struct replay *r = &rs[a];
        r->cpu_opts = tl_histogram_cpu_defaults;
        r->mem_opts = tl_histogram_memory_defaults;
        if (algos[a].half_life > 0) {
            r->cpu_opts.half_life = algos[a].half_life;
            r->mem_opts.half_life = algos[a].half_life;
        }
        r->own = algos[a].kind == ALGO_VPA || algos[a].half_life > 0;
        tl_histogram_init(&r->cpu, &r->cpu_opts);
        tl_histogram_init(&r->mem, &r->mem_opts);
        tl_histogram_init(&r->vpa_peaks, &tl_histogram_memory_defaults);
    }
    double t0 = tr->t[0];
    size_t fed = 0;
    for (long day = 1; t0 + (double)day * DAY < tr->t[tr->n - 1]; day++) {
        double now = t0 + (double)day * DAY;
        for (; fed < tr->n && tr->t[fed] < now; fed++) {
            if (tl_histogram_add(&cpu, tr->cpu[fed], 1, tr->t[fed]) != TL_OK ||
                tl_histogram_add(&mem, tr->mem_peak[fed], 1, tr->t[fed]) != TL_OK)
                goto out;
            for (size_t a = 0; a < nalgos; a++) {
                struct replay *r = &rs[a];
                if (!r->own)
                    continue;
                if (tl_histogram_add(&r->cpu, tr->cpu[fed], cpu_weight(&algos[a], r), tr->t[fed]) !=
                    TL_OK)
                    goto out;
                if (algos[a].kind == ALGO_VPA)
                    r->day_peak = fmax(r->day_peak, tr->mem_peak[fed]);
                else if (tl_histogram_add(&r->mem, tr->mem_peak[fed], 1, tr->t[fed]) != TL_OK)
                    goto out;
            }
        }
        /* VPA: the 24 h aggregation window that ends now adds its peak (windows start at the
         * first sample, so they line up with these days). */
        for (size_t a = 0; a < nalgos; a++) {
            struct replay *r = &rs[a];
            if (algos[a].kind != ALGO_VPA)
                continue;
            double peak = r->day_peak;
            if (r->oom_today) {
                double at = r->advice.memory_limit;
                peak = fmax(peak, fmax(at * VPA_OOM_RATIO, at + VPA_OOM_MIN_BUMP));
            }
            if (peak > 0 && tl_histogram_add(&r->vpa_peaks, peak, 1, now) != TL_OK)
                goto out;
            r->day_peak = 0;
        }
        size_t end = fed;
        while (end < tr->n && tr->t[end] < now + DAY)
            end++;
        for (size_t a = 0; a < nalgos; a++) {
            struct replay *r = &rs[a];
            r->oom_today = false;
            if (end == fed)
                continue; /* a gap: nothing to score, and nothing new to learn from */
            double started = seconds_now();
            switch (algos[a].kind) {
            case ALGO_TAILOR:
                advise_tailor(&algos[a], r, tr, r->own ? &r->cpu : &cpu, r->own ? &r->mem : &mem,
                              now);
                break;
            case ALGO_VPA:
                advise_vpa(r, &r->advice);
                break;
            case ALGO_KRR:
                advise_krr(tr, fed, now, scratch, &r->advice);
                break;
            }
            r->days++;
            scores[a].seconds += seconds_now() - started;
            scores[a].advices++;
            double peak = evaluate(r, tr, fed, end, now, &scores[a]);
            if (detail_trace && strcmp(detail_trace, tr->name) == 0)
                print_day(tr, &algos[a], r, now, fed, end, peak);
        }
    }
    ok = true;
out:
    if (rs) {
        for (size_t a = 0; a < nalgos; a++) {
            tl_histogram_free(&rs[a].cpu);
            tl_histogram_free(&rs[a].mem);
            tl_histogram_free(&rs[a].vpa_peaks);
        }
    }
    free(rs);
    free(scratch);
    tl_histogram_free(&cpu);
    tl_histogram_free(&mem);
    return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* Report                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static double percent(size_t part, size_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0;
}

struct totals {
    double coverage_sum; /* of per-trace coverage, for the mean over traces */
    double worst_coverage;
    size_t traces;
    size_t days, oom_days, over_request_days;
    double cpu_short, cpu_waste, mem_waste; /* sums over traces of per-sample means */
};

static void add_totals(struct totals *t, const struct score *s)
{
    if (s->samples == 0)
        return;
    double coverage = percent(s->covered, s->samples);
    if (t->traces == 0 || coverage < t->worst_coverage)
        t->worst_coverage = coverage;
    t->coverage_sum += coverage;
    t->traces++;
    t->days += s->days;
    t->oom_days += s->oom_days;
    t->over_request_days += s->over_request_days;
    t->cpu_short += s->cpu_short / (double)s->samples;
    t->cpu_waste += s->cpu_waste / (double)s->samples;
    t->mem_waste += s->mem_waste / (double)s->samples / GIB;
}

static void print_summary(const char *title, const struct trace *traces, size_t ntraces,
                          const struct algo *algos, size_t nalgos, const struct score *scores,
                          int which) /* 1 real, 0 generated, -1 all */
{
    size_t count = 0;
    for (size_t i = 0; i < ntraces; i++)
        count += which < 0 || traces[i].real == (which == 1);
    if (count == 0)
        return;
    printf("\n%s (%zu traces)\n", title, count);
    printf("%-22s %7s %7s %9s %6s %6s %6s %6s %9s %9s\n", "algorithm", "CPU cov", "worst",
           "CPU short", "days", "OOM d", "OOM %", ">req %", "CPU waste", "mem waste");
    printf("%-22s %7s %7s %9s %6s %6s %6s %6s %9s %9s\n", "", "%", "%", "cores", "", "", "", "",
           "cores", "GiB");
    for (size_t a = 0; a < nalgos; a++) {
        struct totals t;
        memset(&t, 0, sizeof(t));
        for (size_t i = 0; i < ntraces; i++) {
            if (which < 0 || traces[i].real == (which == 1))
                add_totals(&t, &scores[i * nalgos + a]);
        }
        printf("%-22s %7.2f %7.2f %9.3f %6zu %6zu %6.2f %6.2f %9.3f %9.3f\n", algos[a].name,
               t.traces ? t.coverage_sum / (double)t.traces : 0, t.worst_coverage, t.cpu_short,
               t.days, t.oom_days, percent(t.oom_days, t.days),
               percent(t.over_request_days, t.days), t.cpu_waste, t.mem_waste);
    }
}

static void print_per_trace(const struct trace *traces, size_t ntraces, const struct algo *algos,
                            size_t nalgos, const struct score *scores)
{
    printf("\nPer trace (the default Tailor policy against both baselines)\n");
    printf("%-38s %-16s %-6s %4s %7s %9s %4s %4s %9s %9s\n", "trace", "shape", "algo", "days",
           "CPU cov", "CPU short", "OOM", ">req", "CPU waste", "mem waste");
    for (size_t i = 0; i < ntraces; i++) {
        for (size_t a = 0; a < nalgos; a++) {
            const struct score *s = &scores[i * nalgos + a];
            if (strcmp(algos[a].name, "tailor") != 0 && algos[a].kind == ALGO_TAILOR)
                continue;
            if (s->samples == 0)
                continue;
            printf("%-38s %-16s %-6s %4zu %7.2f %9.4f %4zu %4zu %9.4f %9.4f\n",
                   a == 0 ? traces[i].label : "", a == 0 ? traces[i].shape : "", algos[a].name,
                   s->days, percent(s->covered, s->samples), s->cpu_short / (double)s->samples,
                   s->oom_days, s->over_request_days, s->cpu_waste / (double)s->samples,
                   s->mem_waste / (double)s->samples / GIB);
        }
    }
}

#define MAX_ALGOS 64

/* Default Tailor, a few alternative policies, and the two baselines. */
/* Timing varies from run to run, so it stays out of the quality tables. */
static void print_run_time(const struct algo *algos, size_t nalgos, const struct score *scores,
                           size_t ntraces)
{
    printf("\nTime to compute one advice (microseconds, varies by machine and run)\n");
    for (size_t a = 0; a < nalgos; a++) {
        double seconds = 0;
        size_t advices = 0;
        for (size_t i = 0; i < ntraces; i++) {
            seconds += scores[i * nalgos + a].seconds;
            advices += scores[i * nalgos + a].advices;
        }
        printf("%-22s %8.1f\n", algos[a].name, advices ? seconds / (double)advices * 1e6 : 0);
    }
}

static size_t make_algos(struct algo *algos)
{
    size_t n = 0;
    struct tl_recommend_policy defaults;
    tl_recommend_policy_defaults(&defaults);
    algos[n++] =
        (struct algo){.name = "tailor", .kind = ALGO_TAILOR, .policy = defaults, .applied = true};
    algos[n] = algos[0];
    algos[n].name = "tailor advice-only";
    algos[n++].applied = false;
    algos[n] = algos[0];
    algos[n].name = "tailor last-ratio";
    algos[n++].last_ratio = true;
    algos[n] = algos[0];
    algos[n].name = "tailor cpu p90";
    algos[n++].policy.cpu.percentile = 90;
    algos[n] = algos[0];
    algos[n].name = "tailor cpu p99";
    algos[n++].policy.cpu.percentile = 99;
    algos[n] = algos[0];
    algos[n].name = "tailor cpu p95+5%";
    algos[n++].policy.cpu.headroom_percent = 5;
    algos[n] = algos[0];
    algos[n].name = "tailor mem p95";
    algos[n++].policy.memory.percentile = 95;
    algos[n] = algos[0];
    algos[n].name = "tailor mem max+15%";
    algos[n].policy.memory.percentile = 100;
    algos[n++].policy.memory.headroom_percent = 15;
    algos[n] = algos[0];
    algos[n].name = "tailor mem p99+15%";
    algos[n++].policy.memory.headroom_percent = 15;
    algos[n] = algos[0];
    algos[n].name = "tailor limit=request";
    algos[n++].policy.memory_limit = TL_LIMIT_SET_TO_REQUEST;
    algos[n++] = (struct algo){.name = "vpa", .kind = ALGO_VPA};
    algos[n++] = (struct algo){.name = "krr", .kind = ALGO_KRR};
    return n;
}

/* --sweep: the baselines and a grid of CPU and memory rules, to choose the defaults from. */
static char sweep_names[MAX_ALGOS][24];

static size_t make_sweep(struct algo *algos)
{
    static const double cpu_p[] = {90, 95, 98, 99};
    static const double cpu_h[] = {0, 5, 10, 15};
    static const double mem_p[] = {95, 99, 100};
    static const double mem_h[] = {10, 15, 20};
    size_t n = 0;
    struct tl_recommend_policy defaults;
    tl_recommend_policy_defaults(&defaults);
    algos[n++] = (struct algo){.name = "vpa", .kind = ALGO_VPA};
    algos[n++] = (struct algo){.name = "krr", .kind = ALGO_KRR};
    for (size_t i = 0; i < sizeof(cpu_p) / sizeof(cpu_p[0]); i++) {
        for (size_t j = 0; j < sizeof(cpu_h) / sizeof(cpu_h[0]); j++) {
            algos[n] = (struct algo){
                .name = sweep_names[n], .kind = ALGO_TAILOR, .policy = defaults, .applied = true};
            algos[n].policy.cpu.percentile = cpu_p[i];
            algos[n].policy.cpu.headroom_percent = cpu_h[j];
            snprintf(sweep_names[n], sizeof(sweep_names[n]), "cpu p%.0f+%.0f%%", cpu_p[i],
                     cpu_h[j]);
            n++;
        }
    }
    static const double half_lives[] = {0.5 * DAY, 2 * DAY, 4 * DAY, 7 * DAY, 1e9};
    for (size_t i = 0; i < sizeof(half_lives) / sizeof(half_lives[0]); i++) {
        algos[n] = (struct algo){
            .name = sweep_names[n], .kind = ALGO_TAILOR, .policy = defaults, .applied = true};
        algos[n].half_life = half_lives[i];
        if (half_lives[i] >= 1e8)
            snprintf(sweep_names[n], sizeof(sweep_names[n]), "no decay");
        else
            snprintf(sweep_names[n], sizeof(sweep_names[n]), "half-life %.1fd",
                     half_lives[i] / DAY);
        n++;
    }
    for (size_t i = 0; i < sizeof(mem_p) / sizeof(mem_p[0]); i++) {
        for (size_t j = 0; j < sizeof(mem_h) / sizeof(mem_h[0]); j++) {
            algos[n] = (struct algo){
                .name = sweep_names[n], .kind = ALGO_TAILOR, .policy = defaults, .applied = true};
            algos[n].policy.memory.percentile = mem_p[i];
            algos[n].policy.memory.headroom_percent = mem_h[j];
            snprintf(sweep_names[n], sizeof(sweep_names[n]), "mem p%.0f+%.0f%%", mem_p[i],
                     mem_h[j]);
            n++;
        }
    }
    return n;
}

static int usage_error(const char *prog)
{
    fprintf(stderr, "usage: %s [--sweep] [--days TRACE] [TRACE_DIR]\n", prog);
    return 2;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    bool sweep = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sweep") == 0)
            sweep = true;
        else if (strcmp(argv[i], "--days") == 0 && i + 1 < argc)
            detail_trace = argv[++i];
        else if (argv[i][0] != '-' && !dir)
            dir = argv[i];
        else
            return usage_error(argv[0]);
    }
    static struct trace traces[MAX_TRACES];
    struct algo algos[MAX_ALGOS];
    double started = seconds_now();
    size_t nalgos = sweep ? make_sweep(algos) : make_algos(algos);
    size_t ntraces = dir ? load_index(dir, traces, MAX_TRACES - NPROFILES) : 0;
    double loaded = seconds_now();
    for (int p = 0; p < NPROFILES; p++) {
        if (generate(&traces[ntraces], (enum profile)p))
            ntraces++;
    }
    struct score *scores = calloc(ntraces * nalgos, sizeof(*scores));
    int status = 1;
    if (!scores)
        goto out;
    for (size_t i = 0; i < ntraces; i++) {
        if (!replay_trace(&traces[i], algos, nalgos, &scores[i * nalgos])) {
            fprintf(stderr, "%s: out of memory\n", traces[i].name);
            goto out;
        }
    }
    printf("Tailor recommender quality: online replay, advice every 24 h from the history so far, "
           "scored on the next 24 h.\n");
    printf("CPU cov: mean over traces of the share of samples with usage <= CPU request; worst: "
           "the lowest trace.\n");
    printf("CPU short: usage above the request, per sample. OOM d: days whose memory peak "
           "crossed the memory limit\n(baselines: limit = request; no limit: never). >req: days "
           "whose peak crossed the request.\n");
    printf("Waste: request minus usage where positive, mean per sample, summed over traces.\n");
    print_summary("All traces", traces, ntraces, algos, nalgos, scores, -1);
    print_summary("Real traces", traces, ntraces, algos, nalgos, scores, 1);
    print_summary("Generated profiles", traces, ntraces, algos, nalgos, scores, 0);
    if (!sweep)
        print_per_trace(traces, ntraces, algos, nalgos, scores);
    print_run_time(algos, nalgos, scores, ntraces);
    size_t samples = 0;
    for (size_t i = 0; i < ntraces; i++)
        samples += traces[i].n;
    printf("\n%zu traces, %zu samples, %zu algorithms: loaded in %.2f s, total %.2f s.\n", ntraces,
           samples, nalgos, loaded - started, seconds_now() - started);
    status = 0;
out:
    free(scores);
    for (size_t i = 0; i < ntraces; i++)
        trace_free(&traces[i]);
    return status;
}
