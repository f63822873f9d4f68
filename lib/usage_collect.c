#include "usage_collect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

enum part_kind { PART_CPU, PART_MEMORY, PART_FACTS, NPARTS };

static const char *const part_names[NPARTS] = {"cpu", "memory", "facts"};

typedef enum tl_err (*build_fn)(const struct tl_usage_settings *settings, const char *ns,
                                char **out);
static const build_fn builders[NPARTS] = {tl_usage_query_cpu, tl_usage_query_memory,
                                          tl_usage_query_facts};

struct cycle;

/* The argument of one query's callback. */
struct part {
    struct cycle *cycle;
    enum part_kind kind;
    struct tl_prom_result *result;
};

struct cycle {
    struct tl_usage_collector *collector;
    struct cycle *next;
    struct cycle *prev;
    char *ns;
    struct tl_workload_ref *workloads; /* names owned */
    size_t nworkloads;
    char *pod_label;
    char *container_label;
    double from;
    double to;
    bool replace;     /* refetching the whole window */
    unsigned pending; /* queries started and not yet answered */
    unsigned queries;
    struct part parts[NPARTS];
    enum tl_err err; /* the first failure */
    char message[640];
    tl_usage_done_fn done;
    void *arg;
};

struct tl_usage_collector {
    struct tl_prom *prom;
    struct tl_usage_store *store;
    struct cycle *cycles; /* running */
};

struct tl_usage_collector *tl_usage_collector_create(struct tl_prom *prom,
                                                     struct tl_usage_store *store)
{
    if (prom == NULL || store == NULL)
        return NULL;
    struct tl_usage_collector *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->prom = prom;
    c->store = store;
    return c;
}

struct tl_prom *tl_usage_collector_prom(const struct tl_usage_collector *collector)
{
    return collector->prom;
}

static void cycle_free(struct cycle *cy)
{
    if (cy == NULL)
        return;
    for (size_t i = 0; i < cy->nworkloads; i++)
        free((char *)cy->workloads[i].name);
    free(cy->workloads);
    for (int i = 0; i < NPARTS; i++) {
        tl_prom_result_free(cy->parts[i].result);
        free(cy->parts[i].result);
    }
    free(cy->ns);
    free(cy->pod_label);
    free(cy->container_label);
    free(cy);
}

static void unlink_cycle(struct cycle *cy)
{
    struct tl_usage_collector *c = cy->collector;
    if (cy->prev)
        cy->prev->next = cy->next;
    else
        c->cycles = cy->next;
    if (cy->next)
        cy->next->prev = cy->prev;
    cy->next = cy->prev = NULL;
}

void tl_usage_collector_destroy(struct tl_usage_collector *collector)
{
    if (collector == NULL)
        return;
    /* First the client: it cancels the queries without calling back, so no callback can reach
     * a cycle freed below. */
    tl_prom_destroy(collector->prom);
    while (collector->cycles) {
        struct cycle *cy = collector->cycles;
        unlink_cycle(cy);
        cycle_free(cy);
    }
    free(collector);
}

bool tl_usage_collecting(const struct tl_usage_collector *collector, const char *ns)
{
    for (const struct cycle *cy = collector->cycles; cy; cy = cy->next) {
        if (strcmp(cy->ns, ns) == 0)
            return true;
    }
    return false;
}

static void fail(struct cycle *cy, enum tl_err err, enum part_kind kind, const char *message)
{
    if (cy->err != TL_OK)
        return;
    cy->err = err;
    snprintf(cy->message, sizeof(cy->message), "%s query: %s", part_names[kind],
             message ? message : tl_strerror(err));
}

/* All answers are in: fold them together, or nothing if any failed, then report. */
static void complete(struct cycle *cy)
{
    struct tl_usage_collector *c = cy->collector;
    unlink_cycle(cy);
    struct tl_usage_cycle report = {
        .ns = cy->ns, .queries = cy->queries, .from = cy->from, .to = cy->to};
    if (cy->err == TL_OK) {
        struct tl_usage_settings settings = {.pod_label = cy->pod_label,
                                             .container_label = cy->container_label};
        struct tl_usage_batch batch = {
            .ns = cy->ns,
            .workloads = cy->workloads,
            .nworkloads = cy->nworkloads,
            .from = cy->from,
            .to = cy->to,
            .cpu = cy->parts[PART_CPU].result,
            .memory = cy->parts[PART_MEMORY].result,
            .facts = cy->parts[PART_FACTS].result,
            .replace = cy->replace,
        };
        enum tl_err err = tl_usage_store_fold(c->store, &settings, &batch, &report.stats);
        if (err != TL_OK) {
            cy->err = err;
            snprintf(cy->message, sizeof(cy->message), "folding the answers: %s", tl_strerror(err));
        }
    }
    report.err = cy->err;
    report.replaced = cy->replace && cy->err == TL_OK;
    if (cy->err != TL_OK) {
        report.message = cy->message;
        TL_WARN("usage collection failed; keeping the history collected so far, retrying next "
                "cycle",
                TL_STR("ns", cy->ns), TL_STR("message", cy->message), TL_ERRF(cy->err));
    }
    else {
        TL_DEBUG("usage collected", TL_STR("ns", cy->ns), TL_DBL("from", cy->from),
                 TL_DBL("to", cy->to), TL_INT("samples", (long long)report.stats.samples),
                 TL_INT("unmatched_series", (long long)report.stats.unmatched));
    }
    cy->done(cy->arg, &report);
    cycle_free(cy);
}

static void on_answer(void *arg, enum tl_err err, struct tl_prom_result *result,
                      const char *message)
{
    struct part *part = arg;
    struct cycle *cy = part->cycle;
    if (err != TL_OK)
        fail(cy, err, part->kind, message);
    else
        part->result = result;
    cy->pending--;
    if (cy->pending == 0)
        complete(cy);
}

static enum tl_err copy_workloads(struct cycle *cy, const struct tl_workload_ref *workloads,
                                  size_t n)
{
    if (n == 0)
        return TL_OK;
    cy->workloads = calloc(n, sizeof(*cy->workloads));
    if (!cy->workloads)
        return TL_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        char *name = strdup(workloads[i].name ? workloads[i].name : "");
        if (!name)
            return TL_ENOMEM;
        cy->workloads[i] = (struct tl_workload_ref){.kind = workloads[i].kind, .name = name};
        cy->nworkloads++;
    }
    return TL_OK;
}

static enum tl_err start_part(struct cycle *cy, enum part_kind kind,
                              const struct tl_usage_settings *s, double step)
{
    char *query = NULL;
    enum tl_err result = builders[kind](s, cy->ns, &query);
    if (result != TL_OK)
        return result;
    struct part *part = &cy->parts[kind];
    part->cycle = cy;
    part->kind = kind;
    struct tl_prom *prom = cy->collector->prom;
    if (kind == PART_FACTS)
        result = tl_prom_query(prom, query, cy->to, on_answer, part);
    else
        result = tl_prom_query_range(prom, query, cy->from + step, cy->to, step, on_answer, part);
    free(query);
    if (result == TL_OK) {
        cy->pending++;
        cy->queries++;
    }
    return result;
}

/*
 * The window: the step grid's last point at or before now, back to where the store's coverage of
 * the namespace ends, but never further than the history. Range queries return points at
 * from + step, ..., to, each summarising the step that ends there, so consecutive cycles meet
 * without overlapping.
 *
 * Decay makes old samples fade but never leave, and a histogram's exact maximum would remember
 * a peak forever; so once the history held spans twice the window (or the coverage fell out of
 * it), the whole window is fetched again and replaces it: one extra-large cycle per window.
 */
enum tl_err tl_usage_collect(struct tl_usage_collector *collector, const char *ns,
                             const struct tl_workload_ref *workloads, size_t nworkloads,
                             const struct tl_usage_settings *settings, double now,
                             tl_usage_done_fn done, void *arg)
{
    enum tl_err result = TL_OK;
    struct cycle *cy = NULL;
    if (ns == NULL || done == NULL || !(now > 0))
        return TL_EINVAL;
    if (tl_usage_collecting(collector, ns))
        return TL_ESTATE;
    struct tl_usage_settings s;
    tl_usage_settings_resolve(settings, &s);
    cy = calloc(1, sizeof(*cy));
    if (!cy)
        return TL_ENOMEM;
    cy->collector = collector;
    cy->done = done;
    cy->arg = arg;
    cy->ns = strdup(ns);
    cy->pod_label = strdup(s.pod_label);
    cy->container_label = strdup(s.container_label);
    if (!cy->ns || !cy->pod_label || !cy->container_label) {
        result = TL_ENOMEM;
        goto out;
    }
    result = copy_workloads(cy, workloads, nworkloads);
    if (result != TL_OK)
        goto out;
    cy->to = floor(now / s.step) * s.step;
    double oldest = floor((cy->to - s.history) / s.step) * s.step;
    double covered = tl_usage_store_covered_until(collector->store, ns);
    double since = tl_usage_store_since(collector->store, ns);
    cy->replace = covered > 0 && (covered < oldest || cy->to - since > 2 * s.history);
    cy->from = cy->replace ? oldest : fmax(oldest, covered);
    if (cy->from > cy->to)
        cy->from = cy->to;

    /* The cycle is linked before any query starts, so a failure after the first start leaves it
     * to finish through the callbacks (with the error) instead of freeing it under them. */
    cy->next = collector->cycles;
    if (collector->cycles)
        collector->cycles->prev = cy;
    collector->cycles = cy;
    bool ranged = cy->from + s.step <= cy->to;
    for (int k = 0; k < NPARTS; k++) {
        if (k != PART_FACTS && !ranged)
            continue;
        enum tl_err err = start_part(cy, (enum part_kind)k, &s, s.step);
        if (err != TL_OK)
            fail(cy, err, (enum part_kind)k, NULL);
    }
    if (cy->pending == 0) {
        result = cy->err != TL_OK ? cy->err : TL_ESTATE;
        unlink_cycle(cy);
        goto out;
    }
    TL_DEBUG("collecting usage", TL_STR("ns", ns), TL_DBL("from", cy->from), TL_DBL("to", cy->to),
             TL_BOOL("replace", cy->replace), TL_INT("queries", cy->queries));
    return TL_OK;
out:
    cycle_free(cy);
    return result;
}
