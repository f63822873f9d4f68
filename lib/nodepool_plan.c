#include "nodepool_plan.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quantity.h"

#define GIB INT64_C(1073741824)
/* How many of the candidate types, best lower bound first, are tried as the main type. */
#define MAIN_TYPES_MAX 32
/* Above this many distinct pod shapes, main types are ranked on a copy of the workload rounded
 * up to a coarse grid, and only the COARSE_KEEP best are packed exactly. */
#define COARSE_ABOVE 1024
#define COARSE_KEEP  4
/* The coarse grid: each step about 9% above the last. */
#define COARSE_STEP_PERCENT 9
/* A narrowing may cost this much more than the plan it aims at (the packer is a heuristic and
 * a smaller type set can pack a little differently) and still count as reaching it. */
#define NARROW_SLACK 0.01
#define LABEL_MAX    64
#define TREE_STACK   128

static void say(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    if (n < 0 && len > 0)
        buf[0] = '\0';
}

void tl_nodepool_plan_input_defaults(struct tl_plan_input *input)
{
    memset(input, 0, sizeof(*input));
    tl_allocatable_options_defaults(&input->allocatable);
    input->max_cost_increase_percent = 10;
}

/* ---- Prices ---- */

static size_t catalog_index(const struct tl_instance_type *type)
{
    return (size_t)(type - tl_catalog_types);
}

/* Average Spot Instance Advisor saving over catalog types [from, to) that have a row. */
static bool average_saving(const char *region, size_t from, size_t to, double *pct)
{
    double sum = 0;
    size_t n = 0;
    for (size_t i = from; i < to; i++) {
        double s;
        if (tl_catalog_spot_savings(region, tl_catalog_types[i].name, &s) == TL_OK) {
            sum += s;
            n++;
        }
    }
    if (n == 0)
        return false;
    *pct = sum / (double)n;
    return true;
}

/* Catalog types are sorted by name and a family's names share the prefix "family.", so one
 * family is one contiguous run. */
static void family_run(size_t index, size_t *from, size_t *to)
{
    const char *family = tl_catalog_types[index].family;
    size_t a = index;
    size_t b = index + 1;
    while (a > 0 && strcmp(tl_catalog_types[a - 1].family, family) == 0)
        a--;
    while (b < tl_catalog_type_count && strcmp(tl_catalog_types[b].family, family) == 0)
        b++;
    *from = a;
    *to = b;
}

enum tl_err tl_nodepool_plan_price(const char *region, const char *type,
                                   enum tl_capacity_type capacity, double *usd_hour)
{
    if (region == NULL || type == NULL || usd_hour == NULL)
        return TL_EINVAL;
    double od;
    enum tl_err result = tl_catalog_ondemand_price(region, type, &od);
    if (result != TL_OK)
        return result;
    if (capacity != TL_CAPACITY_SPOT) {
        *usd_hour = od;
        return TL_OK;
    }
    double pct = 0;
    if (tl_catalog_spot_savings(region, type, &pct) != TL_OK) {
        size_t from, to;
        family_run(catalog_index(tl_catalog_find(type)), &from, &to);
        if (!average_saving(region, from, to, &pct) &&
            !average_saving(region, 0, tl_catalog_type_count, &pct))
            pct = 0;
    }
    *usd_hour = od * (1 - pct / 100);
    return TL_OK;
}

/* Everything per catalog type that does not depend on the requirements, computed once a call. */
struct catalog_view {
    const char *region;
    double *od;   /* < 0: no on-demand price in the region */
    double *spot; /* < 0 likewise */
    struct tl_allocatable *alloc;
};

static void view_free(struct catalog_view *v)
{
    free(v->od);
    free(v->spot);
    free(v->alloc);
}

static enum tl_err view_build(const char *region, const struct tl_allocatable_options *options,
                              struct catalog_view *out)
{
    enum tl_err result = TL_OK;
    size_t n = tl_catalog_type_count;
    struct catalog_view v = {region, calloc(n, sizeof(double)), calloc(n, sizeof(double)),
                             calloc(n, sizeof(struct tl_allocatable))};
    double *pct = calloc(n, sizeof(double));
    bool *has = calloc(n, sizeof(bool));
    if (v.od == NULL || v.spot == NULL || v.alloc == NULL || pct == NULL || has == NULL) {
        result = TL_ENOMEM;
        goto out;
    }
    double region_sum = 0;
    size_t region_n = 0;
    for (size_t i = 0; i < n; i++) {
        const struct tl_instance_type *t = &tl_catalog_types[i];
        if (tl_catalog_ondemand_price(region, t->name, &v.od[i]) != TL_OK)
            v.od[i] = -1;
        has[i] = tl_catalog_spot_savings(region, t->name, &pct[i]) == TL_OK;
        if (has[i]) {
            region_sum += pct[i];
            region_n++;
        }
        result = tl_allocatable_compute(t, options, &v.alloc[i]);
        if (result != TL_OK)
            goto out;
    }
    double region_avg = region_n > 0 ? region_sum / (double)region_n : 0;
    for (size_t from = 0; from < n;) {
        size_t to;
        size_t unused;
        family_run(from, &unused, &to);
        double sum = 0;
        size_t cnt = 0;
        for (size_t i = from; i < to; i++) {
            if (has[i]) {
                sum += pct[i];
                cnt++;
            }
        }
        double fallback = cnt > 0 ? sum / (double)cnt : region_avg;
        for (size_t i = from; i < to; i++) {
            double p = has[i] ? pct[i] : fallback;
            v.spot[i] = v.od[i] >= 0 ? v.od[i] * (1 - p / 100) : -1;
        }
        from = to;
    }
    *out = v;
    v.od = NULL;
    v.spot = NULL;
    v.alloc = NULL;
out:
    view_free(&v);
    free(pct);
    free(has);
    return result;
}

/* ---- The workload: pods grouped into classes of equal requests ---- */

struct pclass {
    int64_t cpu;
    int64_t mem;
    uint32_t count;
    size_t first; /* input index of one such pod, for messages */
};

struct workload {
    struct pclass *classes; /* CPU, then memory, descending: Karpenter's order */
    size_t nclasses;
    int64_t ds_cpu; /* one pod of every DaemonSet, on every node */
    int64_t ds_mem;
    int32_t ds_count;
    int64_t total_cpu;
    int64_t total_mem;
    uint64_t npods;
};

struct item {
    int64_t cpu;
    int64_t mem;
    size_t index;
    uint32_t count; /* 0 counts as 1 */
};

static int compare_items(const void *a, const void *b)
{
    const struct item *x = a;
    const struct item *y = b;
    if (x->cpu != y->cpu)
        return x->cpu > y->cpu ? -1 : 1;
    if (x->mem != y->mem)
        return x->mem > y->mem ? -1 : 1;
    return x->index < y->index ? -1 : (x->index > y->index);
}

static void workload_free(struct workload *w)
{
    free(w->classes);
    memset(w, 0, sizeof(*w));
}

/* Sorts items and merges equal ones into w's classes (w->classes has room for n). */
static void merge_classes(struct item *items, size_t n, struct workload *w)
{
    qsort(items, n, sizeof(*items), compare_items);
    w->nclasses = 0;
    for (size_t i = 0; i < n; i++) {
        struct pclass *last = w->nclasses ? &w->classes[w->nclasses - 1] : NULL;
        uint32_t count = items[i].count ? items[i].count : 1;
        if (last && last->cpu == items[i].cpu && last->mem == items[i].mem) {
            last->count += count;
            continue;
        }
        w->classes[w->nclasses++] =
            (struct pclass){items[i].cpu, items[i].mem, count, items[i].index};
    }
}

/* The smallest grid value at or above v; the grid starts at 1 and grows by about 9% a step, in
 * integers so that every platform rounds alike. */
static int64_t grid_up(int64_t v)
{
    int64_t g = 1;
    while (g < v) {
        int64_t step = g * COARSE_STEP_PERCENT / 100;
        if (g > INT64_MAX / 2)
            return v;
        g += step > 0 ? step : 1;
    }
    return v <= 0 ? 0 : g;
}

static enum tl_err workload_build(const struct tl_plan_input *in, bool recommended,
                                  struct workload *out)
{
    struct workload w;
    memset(&w, 0, sizeof(w));
    struct item *items = calloc(in->npods + 1, sizeof(*items));
    if (items == NULL)
        return TL_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < in->npods; i++) {
        const struct tl_plan_pod *p = &in->pods[i];
        int64_t cpu = recommended && p->rec_cpu_milli > 0 ? p->rec_cpu_milli : p->cpu_milli;
        int64_t mem =
            recommended && p->rec_memory_bytes > 0 ? p->rec_memory_bytes : p->memory_bytes;
        if (p->daemonset) {
            w.ds_cpu += cpu;
            w.ds_mem += mem;
            w.ds_count++;
            continue;
        }
        items[n++] = (struct item){cpu, mem, i, 1};
        w.total_cpu += cpu;
        w.total_mem += mem;
    }
    w.npods = n;
    w.classes = calloc(n + 1, sizeof(*w.classes));
    if (w.classes == NULL) {
        free(items);
        return TL_ENOMEM;
    }
    merge_classes(items, n, &w);
    free(items);
    *out = w;
    return TL_OK;
}

/* ---- Candidate types ---- */

struct ptype {
    size_t cat;  /* catalog index */
    int64_t cpu; /* room for workload pods: allocatable less the DaemonSets */
    int64_t mem;
    int32_t pods;
    double price; /* hourly at the planned capacity type */
    double score; /* hourly cost of the fractional one-type fleet: a lower bound */
};

struct candidates {
    struct ptype *all; /* allowed, priced, with room, in catalog order */
    size_t nall;
    struct ptype *best; /* the Pareto set of all: price ascending */
    size_t nbest;
    size_t nallowed;
};

static void candidates_free(struct candidates *c)
{
    free(c->all);
    free(c->best);
    memset(c, 0, sizeof(*c));
}

static int compare_by_price(const void *a, const void *b)
{
    const struct ptype *x = a;
    const struct ptype *y = b;
    if (x->price != y->price)
        return x->price < y->price ? -1 : 1;
    if (x->cpu != y->cpu)
        return x->cpu > y->cpu ? -1 : 1;
    if (x->mem != y->mem)
        return x->mem > y->mem ? -1 : 1;
    if (x->pods != y->pods)
        return x->pods > y->pods ? -1 : 1;
    return x->cat < y->cat ? -1 : (x->cat > y->cat);
}

static double ratio(int64_t need, int64_t room)
{
    return need <= 0 ? 0 : (double)need / (double)room;
}

static enum tl_err candidates_build(const struct catalog_view *v,
                                    const struct tl_nodepool_reqs *reqs, enum tl_capacity_type mode,
                                    enum tl_arch arch, const struct workload *w,
                                    struct candidates *out)
{
    struct candidates c;
    memset(&c, 0, sizeof(c));
    c.all = calloc(tl_catalog_type_count, sizeof(*c.all));
    c.best = calloc(tl_catalog_type_count, sizeof(*c.best));
    if (c.all == NULL || c.best == NULL) {
        candidates_free(&c);
        return TL_ENOMEM;
    }
    for (size_t i = 0; i < tl_catalog_type_count; i++) {
        if (!tl_nodepool_reqs_allow(reqs, &tl_catalog_types[i]))
            continue;
        c.nallowed++;
        if (arch != TL_ARCH_UNKNOWN && tl_catalog_types[i].arch != arch)
            continue;
        double price = mode == TL_CAPACITY_SPOT ? v->spot[i] : v->od[i];
        const struct tl_allocatable *a = &v->alloc[i];
        struct ptype t = {
            i, a->cpu_milli - w->ds_cpu, a->memory_bytes - w->ds_mem, a->pods - w->ds_count, price,
            0};
        if (price <= 0 || t.cpu <= 0 || t.mem <= 0 || t.pods <= 0)
            continue;
        double nodes = ratio(w->total_cpu, t.cpu);
        double by_mem = ratio(w->total_mem, t.mem);
        double by_pods = ratio((int64_t)w->npods, t.pods);
        nodes = by_mem > nodes ? by_mem : nodes;
        nodes = by_pods > nodes ? by_pods : nodes;
        t.score = price * nodes;
        c.all[c.nall++] = t;
    }
    /* A type is dominated when one no dearer offers at least as much of everything: the
     * packer never needs it, as any node it would fill fits the other as cheaply. */
    memcpy(c.best, c.all, c.nall * sizeof(*c.all));
    qsort(c.best, c.nall, sizeof(*c.best), compare_by_price);
    size_t kept = 0;
    for (size_t i = 0; i < c.nall; i++) {
        const struct ptype *t = &c.best[i];
        bool dominated = false;
        for (size_t j = 0; j < kept && !dominated; j++) {
            const struct ptype *k = &c.best[j];
            dominated = k->cpu >= t->cpu && k->mem >= t->mem && k->pods >= t->pods;
        }
        if (!dominated)
            c.best[kept++] = *t;
    }
    c.nbest = kept;
    *out = c;
    return TL_OK;
}

/* The cheapest candidate that takes cpu, mem and pods; -1 when none does. */
static long cheapest_fit(const struct candidates *c, int64_t cpu, int64_t mem, int32_t pods)
{
    for (size_t i = 0; i < c->nbest; i++) {
        const struct ptype *t = &c->best[i];
        if (t->cpu >= cpu && t->mem >= mem && t->pods >= pods)
            return (long)i;
    }
    return -1;
}

/* A copy of w with every request rounded up to the grid: never smaller, so a packing of it is
 * feasible for w too, and it has at most a few thousand shapes. A pod that rounded up would fit
 * no type keeps its exact size. */
static enum tl_err workload_coarsen(const struct workload *w, const struct candidates *cands,
                                    struct workload *out)
{
    struct workload c = *w;
    c.classes = calloc(w->nclasses + 1, sizeof(*c.classes));
    struct item *items = calloc(w->nclasses + 1, sizeof(*items));
    if (c.classes == NULL || items == NULL) {
        free(c.classes);
        free(items);
        return TL_ENOMEM;
    }
    for (size_t i = 0; i < w->nclasses; i++) {
        const struct pclass *k = &w->classes[i];
        items[i] = (struct item){grid_up(k->cpu), grid_up(k->mem), k->first, k->count};
        if (cheapest_fit(cands, items[i].cpu, items[i].mem, 1) < 0)
            items[i] = (struct item){k->cpu, k->mem, k->first, k->count};
    }
    merge_classes(items, w->nclasses, &c);
    free(items);
    *out = c;
    return TL_OK;
}

/* A pod no allowed type can hold, and what it lacks. */
struct misfit {
    bool any;
    size_t pod;
    int64_t cpu, mem;
    int64_t max_cpu, max_mem; /* the most any candidate offers after overhead */
    size_t max_cpu_cat, max_mem_cat;
};

static void find_misfit(const struct candidates *c, const struct workload *w, struct misfit *m)
{
    memset(m, 0, sizeof(*m));
    for (size_t i = 0; i < c->nbest; i++) {
        if (c->best[i].cpu > m->max_cpu) {
            m->max_cpu = c->best[i].cpu;
            m->max_cpu_cat = c->best[i].cat;
        }
        if (c->best[i].mem > m->max_mem) {
            m->max_mem = c->best[i].mem;
            m->max_mem_cat = c->best[i].cat;
        }
    }
    for (size_t i = 0; i < w->nclasses; i++) {
        const struct pclass *k = &w->classes[i];
        if (cheapest_fit(c, k->cpu, k->mem, 1) < 0) {
            m->any = true;
            m->pod = k->first;
            m->cpu = k->cpu;
            m->mem = k->mem;
            return;
        }
    }
}

static void format_cores(int64_t milli, char *buf, size_t len)
{
    if (milli % 1000 == 0)
        say(buf, len, "%lld", (long long)(milli / 1000));
    else if (milli % 100 == 0)
        say(buf, len, "%.1f", (double)milli / 1000.0);
    else if (milli % 10 == 0)
        say(buf, len, "%.2f", (double)milli / 1000.0);
    else
        say(buf, len, "%.3f", (double)milli / 1000.0);
}

static void format_bytes(int64_t bytes, char *buf, size_t len)
{
    struct tl_quantity q = tl_quantity_from_bytes(bytes);
    if (tl_quantity_format(&q, buf, len) != TL_OK)
        say(buf, len, "%lld", (long long)bytes);
}

static void describe_misfit(const struct tl_plan_input *in, const struct workload *w,
                            const struct misfit *m, char *buf, size_t len)
{
    const char *name = in->pods[m->pod].name ? in->pods[m->pod].name : "(unnamed)";
    char need[48], most[48], need_mem[48], most_mem[48];
    format_cores(m->cpu, need, sizeof(need));
    format_cores(m->max_cpu, most, sizeof(most));
    format_bytes(m->mem, need_mem, sizeof(need_mem));
    format_bytes(m->max_mem, most_mem, sizeof(most_mem));
    if (m->max_cpu <= 0)
        say(buf, len, "no allowed type has room for pods after %d DaemonSets", (int)w->ds_count);
    else if (m->cpu > m->max_cpu)
        say(buf, len,
            "pod %s needs %s CPU, more than any allowed type offers (at most %s on %s after "
            "overhead)",
            name, need, most, tl_catalog_types[m->max_cpu_cat].name);
    else if (m->mem > m->max_mem)
        say(buf, len,
            "pod %s needs %s of memory, more than any allowed type offers (at most %s on %s "
            "after overhead)",
            name, need_mem, most_mem, tl_catalog_types[m->max_mem_cat].name);
    else
        say(buf, len, "pod %s needs %s CPU and %s of memory, which no allowed type offers together",
            name, need, need_mem);
}

/* ---- First-fit search tree ----
 * A max-tree over the open nodes' free CPU, memory and pod slots: the leftmost node that takes a
 * pod is found in about log(nodes) steps instead of a scan, which is what makes first-fit over
 * tens of thousands of pods cheap. A subtree is skipped when any of its three maxima is short. */

struct fit_tree {
    size_t leaves; /* a power of two */
    int64_t *cpu;
    int64_t *mem;
    int32_t *pods;
};

static void tree_free(struct fit_tree *t)
{
    free(t->cpu);
    free(t->mem);
    free(t->pods);
    memset(t, 0, sizeof(*t));
}

static void tree_pull(struct fit_tree *t, size_t i)
{
    size_t l = 2 * i;
    t->cpu[i] = t->cpu[l] > t->cpu[l + 1] ? t->cpu[l] : t->cpu[l + 1];
    t->mem[i] = t->mem[l] > t->mem[l + 1] ? t->mem[l] : t->mem[l + 1];
    t->pods[i] = t->pods[l] > t->pods[l + 1] ? t->pods[l] : t->pods[l + 1];
}

/* Grows to hold at least n leaves, keeping the leaves it has. */
static enum tl_err tree_reserve(struct fit_tree *t, size_t n)
{
    if (n <= t->leaves)
        return TL_OK;
    size_t leaves = t->leaves ? t->leaves : 64;
    while (leaves < n)
        leaves *= 2;
    struct fit_tree g = {leaves, malloc(2 * leaves * sizeof(int64_t)),
                         malloc(2 * leaves * sizeof(int64_t)),
                         malloc(2 * leaves * sizeof(int32_t))};
    if (g.cpu == NULL || g.mem == NULL || g.pods == NULL) {
        tree_free(&g);
        return TL_ENOMEM;
    }
    for (size_t i = 0; i < leaves; i++) {
        bool old = i < t->leaves;
        g.cpu[leaves + i] = old ? t->cpu[t->leaves + i] : -1;
        g.mem[leaves + i] = old ? t->mem[t->leaves + i] : -1;
        g.pods[leaves + i] = old ? t->pods[t->leaves + i] : 0;
    }
    for (size_t i = leaves - 1; i >= 1; i--)
        tree_pull(&g, i);
    tree_free(t);
    *t = g;
    return TL_OK;
}

static void tree_reset(struct fit_tree *t)
{
    for (size_t i = 1; i < 2 * t->leaves; i++) {
        t->cpu[i] = -1;
        t->mem[i] = -1;
        t->pods[i] = 0;
    }
}

static void tree_set(struct fit_tree *t, size_t leaf, int64_t cpu, int64_t mem, int32_t pods)
{
    size_t i = t->leaves + leaf;
    t->cpu[i] = cpu;
    t->mem[i] = mem;
    t->pods[i] = pods;
    for (i /= 2; i >= 1; i /= 2)
        tree_pull(t, i);
}

/* The leftmost leaf that takes one pod of cpu and mem, or -1. The search is depth-first, left
 * child first, and skips every subtree whose maxima are short in any resource. */
static long tree_first(const struct fit_tree *t, int64_t cpu, int64_t mem)
{
    if (t->leaves == 0)
        return -1;
    const int64_t *tc = t->cpu;
    const int64_t *tm = t->mem;
    const int32_t *tp = t->pods;
    size_t stack[TREE_STACK];
    size_t top = 0;
    stack[top++] = 1;
    while (top > 0) {
        size_t i = stack[--top];
        if (tc[i] < cpu || tm[i] < mem || tp[i] < 1)
            continue;
        if (i >= t->leaves)
            return (long)(i - t->leaves);
        /* Depth is at most 64 and each level leaves one sibling behind: the stack holds. */
        stack[top++] = 2 * i + 1;
        stack[top++] = 2 * i;
    }
    return -1;
}

/* ---- The packer ---- */

struct pnode {
    uint32_t type; /* index into candidates.best */
    int64_t cpu;   /* used by workload pods */
    int64_t mem;
    int32_t pods;
};

struct packer {
    const struct candidates *c;
    const struct workload *w;
    struct pnode *nodes;
    size_t nnodes, cap;
    struct fit_tree tree;
    long *fit;             /* per class: the cheapest type taking one pod */
    int64_t *min_cpu_from; /* per class: the smallest request of it and every later class */
    int64_t *min_mem_from;
};

static void packer_free(struct packer *p)
{
    free(p->nodes);
    tree_free(&p->tree);
    free(p->fit);
    free(p->min_cpu_from);
    free(p->min_mem_from);
    memset(p, 0, sizeof(*p));
}

static enum tl_err packer_init(struct packer *p, const struct candidates *c,
                               const struct workload *w)
{
    memset(p, 0, sizeof(*p));
    p->c = c;
    p->w = w;
    size_t n = w->nclasses;
    p->fit = calloc(n + 1, sizeof(*p->fit));
    p->min_cpu_from = calloc(n + 1, sizeof(int64_t));
    p->min_mem_from = calloc(n + 1, sizeof(int64_t));
    if (p->fit == NULL || p->min_cpu_from == NULL || p->min_mem_from == NULL) {
        packer_free(p);
        return TL_ENOMEM;
    }
    p->min_cpu_from[n] = INT64_MAX;
    p->min_mem_from[n] = INT64_MAX;
    for (size_t i = n; i-- > 0;) {
        const struct pclass *k = &w->classes[i];
        p->fit[i] = cheapest_fit(c, k->cpu, k->mem, 1);
        p->min_cpu_from[i] = k->cpu < p->min_cpu_from[i + 1] ? k->cpu : p->min_cpu_from[i + 1];
        p->min_mem_from[i] = k->mem < p->min_mem_from[i + 1] ? k->mem : p->min_mem_from[i + 1];
    }
    return TL_OK;
}

static enum tl_err open_node(struct packer *p, uint32_t type, size_t *index)
{
    if (p->nnodes == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        struct pnode *grown = realloc(p->nodes, cap * sizeof(*grown));
        if (grown == NULL)
            return TL_ENOMEM;
        p->nodes = grown;
        p->cap = cap;
    }
    enum tl_err result = tree_reserve(&p->tree, p->nnodes + 1);
    if (result != TL_OK)
        return result;
    p->nodes[p->nnodes] = (struct pnode){type, 0, 0, 0};
    *index = p->nnodes++;
    return TL_OK;
}

/* Writes a node's free room into the tree; a node that cannot take even the smallest pod still
 * to come is closed (left out of the tree) so later searches skip it. */
static void node_update(struct packer *p, size_t index, size_t class_index)
{
    const struct pnode *n = &p->nodes[index];
    const struct ptype *t = &p->c->best[n->type];
    int64_t cpu = t->cpu - n->cpu;
    int64_t mem = t->mem - n->mem;
    int32_t pods = t->pods - n->pods;
    if (cpu < p->min_cpu_from[class_index] || mem < p->min_mem_from[class_index] || pods < 1)
        tree_set(&p->tree, index, -1, -1, 0);
    else
        tree_set(&p->tree, index, cpu, mem, pods);
}

/* How many pods of class k still fit node n. */
static uint32_t room_for(const struct ptype *t, const struct pnode *n, const struct pclass *k,
                         uint32_t want)
{
    int64_t fit = t->pods - n->pods;
    if (k->cpu > 0 && (t->cpu - n->cpu) / k->cpu < fit)
        fit = (t->cpu - n->cpu) / k->cpu;
    if (k->mem > 0 && (t->mem - n->mem) / k->mem < fit)
        fit = (t->mem - n->mem) / k->mem;
    if (fit < 0)
        fit = 0;
    return fit < (int64_t)want ? (uint32_t)fit : want;
}

/*
 * First-fit decreasing with one main type. Pods go in Karpenter's order (CPU, then memory,
 * descending) to the first open node with room; a new node is of the main type, or, for a pod
 * the main type cannot hold, the cheapest type that can. Equal pods are placed as a block: for
 * identical items first-fit fills one node until it is full before moving on, so placing as
 * many as fit at once is the same algorithm, only faster.
 */
static enum tl_err pack(struct packer *p, size_t main_type)
{
    p->nnodes = 0;
    if (p->tree.leaves > 0)
        tree_reset(&p->tree);
    const struct ptype *m = &p->c->best[main_type];
    for (size_t ci = 0; ci < p->w->nclasses; ci++) {
        const struct pclass *k = &p->w->classes[ci];
        bool main_fits = m->cpu >= k->cpu && m->mem >= k->mem && m->pods >= 1;
        uint32_t left = k->count;
        /* Once a search has failed, only nodes opened since could take this class, and each is
         * filled before the next opens: no search can succeed again for it. */
        bool none_open = false;
        while (left > 0) {
            long found = none_open ? -1 : tree_first(&p->tree, k->cpu, k->mem);
            none_open = found < 0;
            size_t index;
            if (found >= 0) {
                index = (size_t)found;
            }
            else {
                if (!main_fits && p->fit[ci] < 0)
                    return TL_ESTATE; /* callers check for misfits first */
                uint32_t type = main_fits ? (uint32_t)main_type : (uint32_t)p->fit[ci];
                enum tl_err result = open_node(p, type, &index);
                if (result != TL_OK)
                    return result;
            }
            struct pnode *n = &p->nodes[index];
            uint32_t take = room_for(&p->c->best[n->type], n, k, left);
            if (take == 0)
                return TL_ESTATE; /* the tree and the node disagree: a bug, not an input */
            n->cpu += k->cpu * take;
            n->mem += k->mem * take;
            n->pods += (int32_t)take;
            left -= take;
            node_update(p, index, ci);
        }
    }
    return TL_OK;
}

/* Gives every node the cheapest type its pods fit: the last, part-filled nodes of a main type
 * usually get a smaller one (the "mixed fill" for the remainder). */
static void shrink(struct packer *p)
{
    long last = -1;
    const struct pnode *prev = NULL;
    for (size_t i = 0; i < p->nnodes; i++) {
        struct pnode *n = &p->nodes[i];
        long t = last;
        if (prev == NULL || prev->cpu != n->cpu || prev->mem != n->mem || prev->pods != n->pods)
            t = cheapest_fit(p->c, n->cpu, n->mem, n->pods);
        if (t >= 0 && p->c->best[t].price < p->c->best[n->type].price)
            n->type = (uint32_t)t;
        last = (long)n->type;
        prev = n;
    }
}

struct outcome {
    double hourly;
    uint32_t nodes;
    int64_t cap_cpu, cap_mem;
    bool within;
};

static struct outcome measure(const struct packer *p, const struct catalog_view *v,
                              const struct tl_nodepool_spec *spec)
{
    struct outcome o = {0, (uint32_t)p->nnodes, 0, 0, true};
    for (size_t i = 0; i < p->nnodes; i++) {
        const struct ptype *t = &p->c->best[p->nodes[i].type];
        o.hourly += t->price;
        o.cap_cpu += v->alloc[t->cat].capacity_cpu_milli;
        o.cap_mem += v->alloc[t->cat].capacity_memory_bytes;
    }
    o.within = (spec->limit_cpu_milli < 0 || o.cap_cpu <= spec->limit_cpu_milli) &&
               (spec->limit_memory_bytes < 0 || o.cap_mem <= spec->limit_memory_bytes) &&
               (spec->limit_nodes < 0 || (int64_t)o.nodes <= spec->limit_nodes);
    return o;
}

/* Whether outcome a beats b: inside the limits first, then cheaper, then fewer nodes. */
static bool better(const struct outcome *a, const struct outcome *b)
{
    if (a->within != b->within)
        return a->within;
    if (fabs(a->hourly - b->hourly) > 1e-9)
        return a->hourly < b->hourly;
    return a->nodes < b->nodes;
}

/* ---- Fleets ---- */

static int compare_lines(const void *a, const void *b)
{
    const struct tl_plan_line *x = a;
    const struct tl_plan_line *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    int c = strcmp(x->type, y->type);
    if (c != 0)
        return c;
    return (int)x->capacity - (int)y->capacity;
}

static void fleet_free(struct tl_plan_fleet *f)
{
    free(f->lines);
    memset(f, 0, sizeof(*f));
}

/* Adds count nodes of a type to f, merging with an existing line. */
static enum tl_err fleet_add(struct tl_plan_fleet *f, size_t *cap, const char *type,
                             enum tl_capacity_type capacity, uint32_t count, double hourly,
                             bool priced)
{
    for (size_t i = 0; i < f->nlines; i++) {
        if (f->lines[i].capacity == capacity && strcmp(f->lines[i].type, type) == 0) {
            f->lines[i].count += count;
            return TL_OK;
        }
    }
    if (f->nlines == *cap) {
        size_t grown_cap = *cap ? *cap * 2 : 8;
        struct tl_plan_line *grown = realloc(f->lines, grown_cap * sizeof(*grown));
        if (grown == NULL)
            return TL_ENOMEM;
        f->lines = grown;
        *cap = grown_cap;
    }
    struct tl_plan_line *l = &f->lines[f->nlines++];
    memset(l, 0, sizeof(*l));
    say(l->type, sizeof(l->type), "%s", type);
    l->capacity = capacity;
    l->count = count;
    l->hourly_usd = priced ? hourly : 0;
    l->priced = priced;
    return TL_OK;
}

static bool within_limits(const struct tl_nodepool_spec *spec, const struct tl_plan_fleet *f)
{
    return (spec->limit_cpu_milli < 0 || f->capacity_cpu_milli <= spec->limit_cpu_milli) &&
           (spec->limit_memory_bytes < 0 || f->capacity_memory_bytes <= spec->limit_memory_bytes) &&
           (spec->limit_nodes < 0 || (int64_t)f->nodes <= spec->limit_nodes);
}

/* Totals and prices of a fleet whose lines are filled in. */
static void fleet_total(struct tl_plan_fleet *f, const struct catalog_view *v,
                        const struct tl_nodepool_spec *spec)
{
    if (f->nlines > 1)
        qsort(f->lines, f->nlines, sizeof(*f->lines), compare_lines);
    f->nodes = 0;
    for (size_t i = 0; i < f->nlines; i++) {
        const struct tl_plan_line *l = &f->lines[i];
        f->nodes += l->count;
        const struct tl_instance_type *t = tl_catalog_find(l->type);
        if (t == NULL || !l->priced) {
            f->unpriced_nodes += l->count;
            if (t == NULL)
                continue;
        }
        size_t ci = catalog_index(t);
        f->capacity_cpu_milli += v->alloc[ci].capacity_cpu_milli * l->count;
        f->capacity_memory_bytes += v->alloc[ci].capacity_memory_bytes * l->count;
        if (!l->priced)
            continue;
        f->monthly_usd += l->hourly_usd * l->count * TL_HOURS_PER_MONTH;
        f->monthly_ondemand_usd += v->od[ci] * l->count * TL_HOURS_PER_MONTH;
        f->monthly_spot_usd += v->spot[ci] * l->count * TL_HOURS_PER_MONTH;
    }
    f->within_limits = within_limits(spec, f);
}

static enum tl_err fleet_from_nodes(const struct tl_plan_input *in, const struct catalog_view *v,
                                    struct tl_plan_fleet *out)
{
    struct tl_plan_fleet f;
    memset(&f, 0, sizeof(f));
    size_t cap = 0;
    for (size_t i = 0; i < in->nnodes; i++) {
        const char *name = in->nodes[i].instance_type ? in->nodes[i].instance_type : "";
        enum tl_capacity_type capacity =
            in->nodes[i].capacity == TL_CAPACITY_SPOT ? TL_CAPACITY_SPOT : TL_CAPACITY_ON_DEMAND;
        const struct tl_instance_type *t = tl_catalog_find(name);
        double price = -1;
        if (t != NULL)
            price =
                capacity == TL_CAPACITY_SPOT ? v->spot[catalog_index(t)] : v->od[catalog_index(t)];
        enum tl_err result = fleet_add(&f, &cap, name, capacity, 1, price, price >= 0);
        if (result != TL_OK) {
            fleet_free(&f);
            return result;
        }
    }
    fleet_total(&f, v, in->nodepool);
    *out = f;
    return TL_OK;
}

static enum tl_err fleet_from_packer(const struct packer *p, const struct catalog_view *v,
                                     const struct tl_nodepool_spec *spec,
                                     enum tl_capacity_type mode, struct tl_plan_fleet *out)
{
    struct tl_plan_fleet f;
    memset(&f, 0, sizeof(f));
    size_t cap = 0;
    uint32_t *counts = calloc(p->c->nbest + 1, sizeof(*counts));
    if (counts == NULL)
        return TL_ENOMEM;
    for (size_t i = 0; i < p->nnodes; i++) {
        counts[p->nodes[i].type]++;
        f.requested_cpu_milli += p->nodes[i].cpu + p->w->ds_cpu;
        f.requested_memory_bytes += p->nodes[i].mem + p->w->ds_mem;
    }
    for (size_t t = 0; t < p->c->nbest; t++) {
        if (counts[t] == 0)
            continue;
        const struct ptype *pt = &p->c->best[t];
        enum tl_err result =
            fleet_add(&f, &cap, tl_catalog_types[pt->cat].name, mode, counts[t], pt->price, true);
        if (result != TL_OK) {
            free(counts);
            fleet_free(&f);
            return result;
        }
    }
    free(counts);
    fleet_total(&f, v, spec);
    *out = f;
    return TL_OK;
}

/* ---- One planning run: requirements + capacity type + workload -> fleet ---- */

struct run {
    struct tl_plan_fleet fleet;
    struct misfit misfit;
    size_t nallowed;
    size_t ncandidates;
    bool planned; /* false: no candidate at all, or a misfit */
};

static void run_free(struct run *r)
{
    fleet_free(&r->fleet);
}

static bool scores_before(const struct ptype *types, size_t a, size_t b)
{
    if (types[a].score != types[b].score)
        return types[a].score < types[b].score;
    return a < b;
}

/* qsort has no context argument; an insertion sort is plenty for the few hundred candidate
 * types there are. */
static void sort_by_score(size_t *order, size_t n, const struct ptype *types)
{
    for (size_t i = 1; i < n; i++) {
        size_t v = order[i];
        size_t j = i;
        while (j > 0 && scores_before(types, v, order[j - 1])) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
}

/* Packs with each of the main types in order[0..n) and leaves the best index in *best. */
static enum tl_err best_main(struct packer *p, const struct catalog_view *v,
                             const struct tl_nodepool_spec *spec, const size_t *order, size_t n,
                             struct outcome *outcomes, long *best)
{
    *best = -1;
    struct outcome best_outcome = {0, 0, 0, 0, false};
    for (size_t i = 0; i < n; i++) {
        enum tl_err result = pack(p, order[i]);
        if (result != TL_OK)
            return result;
        shrink(p);
        outcomes[i] = measure(p, v, spec);
        if (*best < 0 || better(&outcomes[i], &best_outcome)) {
            *best = (long)order[i];
            best_outcome = outcomes[i];
        }
    }
    return TL_OK;
}

/*
 * The plan: the candidate types (the MAIN_TYPES_MAX with the lowest lower bound) are each tried
 * as the main type of a first-fit-decreasing packing, each packing's nodes are shrunk to the
 * cheapest type their pods fit, and the cheapest packing within spec.limits wins (the cheapest
 * of all when none is within them); ties go to fewer nodes, then the earlier candidate. With
 * many distinct pod shapes the main types are first ranked on the coarse workload and only the
 * best few are packed exactly, which bounds the work at a few packings of every pod.
 */
static enum tl_err plan_run(const struct tl_plan_input *in, const struct catalog_view *v,
                            const struct tl_nodepool_reqs *reqs, enum tl_capacity_type mode,
                            const struct workload *w, struct run *out)
{
    enum tl_err result = TL_OK;
    struct run r;
    memset(&r, 0, sizeof(r));
    struct candidates c;
    struct packer p;
    struct packer pc;
    struct workload coarse;
    size_t *order = NULL;
    struct outcome *outcomes = NULL;
    memset(&p, 0, sizeof(p));
    memset(&pc, 0, sizeof(pc));
    memset(&coarse, 0, sizeof(coarse));
    result = candidates_build(v, reqs, mode, in->arch, w, &c);
    if (result != TL_OK)
        return result;
    r.nallowed = c.nallowed;
    r.ncandidates = c.nbest;
    find_misfit(&c, w, &r.misfit);
    if (c.nbest == 0 || r.misfit.any) {
        r.fleet.within_limits = true;
        goto done;
    }
    result = packer_init(&p, &c, w);
    if (result != TL_OK)
        goto out;
    order = calloc(c.nbest, sizeof(*order));
    outcomes = calloc(c.nbest, sizeof(*outcomes));
    if (order == NULL || outcomes == NULL) {
        result = TL_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < c.nbest; i++)
        order[i] = i;
    sort_by_score(order, c.nbest, c.best);
    size_t tries = c.nbest < MAIN_TYPES_MAX ? c.nbest : MAIN_TYPES_MAX;
    long best = -1;
    if (w->nclasses > COARSE_ABOVE) {
        /* Rank on the coarse shapes; a coarse pod always fits where its exact one does. */
        if ((result = workload_coarsen(w, &c, &coarse)) != TL_OK ||
            (result = packer_init(&pc, &c, &coarse)) != TL_OK ||
            (result = best_main(&pc, v, in->nodepool, order, tries, outcomes, &best)) != TL_OK)
            goto out;
        size_t keep = tries < COARSE_KEEP ? tries : COARSE_KEEP;
        for (size_t i = 0; i < keep; i++) {
            size_t pick = i;
            for (size_t j = i + 1; j < tries; j++) {
                if (better(&outcomes[j], &outcomes[pick]))
                    pick = j;
            }
            struct outcome o = outcomes[i];
            size_t t = order[i];
            outcomes[i] = outcomes[pick];
            order[i] = order[pick];
            outcomes[pick] = o;
            order[pick] = t;
        }
        tries = keep;
    }
    result = best_main(&p, v, in->nodepool, order, tries, outcomes, &best);
    if (result != TL_OK)
        goto out;
    if (w->npods > 0) {
        result = pack(&p, (size_t)best);
        if (result != TL_OK)
            goto out;
        shrink(&p);
    }
    result = fleet_from_packer(&p, v, in->nodepool, mode, &r.fleet);
    if (result != TL_OK)
        goto out;
    r.planned = true;
done:
    *out = r;
    memset(&r, 0, sizeof(r));
out:
    run_free(&r);
    free(order);
    free(outcomes);
    packer_free(&p);
    packer_free(&pc);
    workload_free(&coarse);
    candidates_free(&c);
    return result;
}

/* ---- Changes ---- */

struct context {
    const struct tl_plan_input *in;
    struct catalog_view view;
    struct workload current, recommended;
    enum tl_capacity_type mode;
    struct tl_plan_result *res;
    size_t changes_cap;
};

static enum tl_err add_change(struct context *ctx, const struct tl_plan_change *change)
{
    struct tl_plan_result *res = ctx->res;
    if (res->nchanges == ctx->changes_cap) {
        size_t cap = ctx->changes_cap ? ctx->changes_cap * 2 : 4;
        struct tl_plan_change *grown = realloc(res->changes, cap * sizeof(*grown));
        if (grown == NULL)
            return TL_ENOMEM;
        res->changes = grown;
        ctx->changes_cap = cap;
    }
    res->changes[res->nchanges++] = *change;
    return TL_OK;
}

static void change_free(struct tl_plan_change *c)
{
    free(c->summary);
    tl_nodepool_reqs_free(&c->requirements);
}

static bool node_allowed(const struct tl_nodepool_reqs *reqs, const struct tl_plan_node *node)
{
    const struct tl_instance_type *t =
        tl_catalog_find(node->instance_type ? node->instance_type : "");
    if (t == NULL)
        return true; /* nothing known to compare: not counted as drifting */
    unsigned cap = node->capacity == TL_CAPACITY_SPOT ? TL_CAPACITY_SPOT : TL_CAPACITY_ON_DEMAND;
    return tl_nodepool_reqs_allow(reqs, t) && (tl_nodepool_reqs_capacity(reqs) & cap) != 0;
}

/* Nodes the current requirements allow that the new ones do not: Karpenter drifts them. */
static uint32_t count_drift(const struct tl_plan_input *in, const struct tl_nodepool_reqs *reqs)
{
    uint32_t n = 0;
    for (size_t i = 0; i < in->nnodes; i++) {
        if (node_allowed(&in->nodepool->reqs, &in->nodes[i]) && !node_allowed(reqs, &in->nodes[i]))
            n++;
    }
    return n;
}

static bool in_plan(const struct tl_plan_fleet *plan, const char *type)
{
    for (size_t i = 0; i < plan->nlines; i++) {
        if (strcmp(plan->lines[i].type, type) == 0)
            return true;
    }
    return false;
}

/* A label value and the lowest lower bound of any allowed type that carries it. */
struct ranked {
    char value[LABEL_MAX];
    double score;
};

static int compare_ranked(const void *a, const void *b)
{
    const struct ranked *x = a;
    const struct ranked *y = b;
    if (x->score != y->score)
        return x->score < y->score ? -1 : 1;
    return strcmp(x->value, y->value);
}

/*
 * Values of key among the types the current requirements allow: first the plan's own (keep),
 * then the others by how cheaply a fleet of their best type would run the recommended pods —
 * the order in which values are added back when minValues needs more.
 */
static enum tl_err rank_values(struct context *ctx, const char *key,
                               const struct tl_plan_fleet *plan, struct ranked **keep_out,
                               size_t *nkeep, struct ranked **extra_out, size_t *nextra)
{
    struct candidates c;
    enum tl_err result = candidates_build(&ctx->view, &ctx->in->nodepool->reqs, ctx->mode,
                                          ctx->in->arch, &ctx->recommended, &c);
    if (result != TL_OK)
        return result;
    struct ranked *keep = calloc(plan->nlines + 1, sizeof(*keep));
    struct ranked *extra = calloc(c.nall + 1, sizeof(*extra));
    size_t nk = 0;
    size_t ne = 0;
    if (keep == NULL || extra == NULL) {
        result = TL_ENOMEM;
        goto out;
    }
    char buf[LABEL_MAX];
    for (size_t i = 0; i < plan->nlines; i++) {
        const struct tl_instance_type *t = tl_catalog_find(plan->lines[i].type);
        if (t == NULL || !tl_nodepool_req_label(t, key, buf, sizeof(buf))) {
            nk = 0; /* a planned type without this label: the key cannot keep the plan */
            break;
        }
        bool dup = false;
        for (size_t j = 0; j < nk && !dup; j++)
            dup = strcmp(keep[j].value, buf) == 0;
        if (!dup)
            memcpy(keep[nk++].value, buf, sizeof(buf));
    }
    for (size_t i = 0; i < c.nall; i++) {
        if (!tl_nodepool_req_label(&tl_catalog_types[c.all[i].cat], key, buf, sizeof(buf)))
            continue;
        bool kept = false;
        for (size_t j = 0; j < nk && !kept; j++)
            kept = strcmp(keep[j].value, buf) == 0;
        if (kept)
            continue;
        size_t j = 0;
        while (j < ne && strcmp(extra[j].value, buf) != 0)
            j++;
        if (j == ne) {
            memcpy(extra[ne].value, buf, sizeof(buf));
            extra[ne++].score = c.all[i].score;
        }
        else if (c.all[i].score < extra[j].score) {
            extra[j].score = c.all[i].score;
        }
    }
    qsort(extra, ne, sizeof(*extra), compare_ranked);
    *keep_out = keep;
    *nkeep = nk;
    *extra_out = extra;
    *nextra = ne;
    keep = NULL;
    extra = NULL;
out:
    free(keep);
    free(extra);
    candidates_free(&c);
    return result;
}

struct narrowing {
    const char *key;
    struct tl_nodepool_reqs reqs;
    uint32_t excluded;      /* current nodes off the plan that it rules out */
    double excluded_hourly; /* what they cost */
    bool ok;
};

static enum tl_err try_narrowing(struct context *ctx, const char *key,
                                 const struct tl_plan_fleet *plan, struct narrowing *out)
{
    memset(out, 0, sizeof(*out));
    out->key = key;
    struct ranked *keep = NULL;
    struct ranked *extra = NULL;
    const char **keepv = NULL;
    const char **extrav = NULL;
    size_t nk = 0;
    size_t ne = 0;
    enum tl_err result = rank_values(ctx, key, plan, &keep, &nk, &extra, &ne);
    if (result != TL_OK)
        return result;
    keepv = calloc(nk + 1, sizeof(*keepv));
    extrav = calloc(ne + 1, sizeof(*extrav));
    if (keepv == NULL || extrav == NULL) {
        result = TL_ENOMEM;
        goto out;
    }
    if (nk == 0)
        goto out;
    for (size_t i = 0; i < nk; i++)
        keepv[i] = keep[i].value;
    for (size_t i = 0; i < ne; i++)
        extrav[i] = extra[i].value;
    char why[200];
    result = tl_nodepool_reqs_narrow(&ctx->in->nodepool->reqs, key, keepv, nk, extrav, ne,
                                     &out->reqs, NULL, why, sizeof(why));
    if (result == TL_ENOTFOUND || result == TL_EINVAL) {
        result = TL_OK; /* this key cannot be narrowed: not an error */
        goto out;
    }
    if (result != TL_OK)
        goto out;
    out->ok = true;
    for (size_t i = 0; i < ctx->in->nnodes; i++) {
        const struct tl_plan_node *node = &ctx->in->nodes[i];
        const char *name = node->instance_type ? node->instance_type : "";
        if (in_plan(plan, name) || !node_allowed(&ctx->in->nodepool->reqs, node) ||
            node_allowed(&out->reqs, node))
            continue;
        out->excluded++;
        double price = 0;
        if (tl_nodepool_plan_price(ctx->view.region, name, node->capacity, &price) == TL_OK)
            out->excluded_hourly += price;
    }
out:
    free(keep);
    free(extra);
    free(keepv);
    free(extrav);
    return result;
}

/* Current pods (their requests today) must still fit somewhere after a narrowing. */
static enum tl_err schedulable(struct context *ctx, const struct tl_nodepool_reqs *reqs, bool *ok)
{
    const struct workload *ws[2] = {&ctx->current, &ctx->recommended};
    *ok = true;
    for (size_t i = 0; i < 2 && *ok; i++) {
        struct candidates c;
        enum tl_err result =
            candidates_build(&ctx->view, reqs, ctx->mode, ctx->in->arch, ws[i], &c);
        if (result != TL_OK)
            return result;
        struct misfit m;
        find_misfit(&c, ws[i], &m);
        *ok = c.nbest > 0 && !m.any;
        candidates_free(&c);
    }
    return TL_OK;
}

static char *requirements_summary(const struct tl_nodepool_reqs *reqs, const char *key)
{
    for (size_t i = reqs->count; i-- > 0;) {
        if (strcmp(reqs->items[i].key, key) == 0 && reqs->items[i].op == TL_REQ_IN)
            return tl_nodepool_req_to_string(&reqs->items[i]);
    }
    return strdup(key);
}

/*
 * Narrows the requirements to the plan when running nodes are of types the plan does not use:
 * Karpenter only consolidates a node when one cheaper node can take its pods, so off-plan
 * nodes linger while their types stay allowed, and drift replaces them once they are not.
 * The coarsest key (category, then family, then size) that rules out every off-plan node wins,
 * else the one that rules out the most cost; minValues are kept by adding back the values with
 * the cheapest fleets. Returns the chosen narrowing in *out (reqs owned by the caller) or none.
 */
static enum tl_err choose_narrowing(struct context *ctx, const struct tl_plan_fleet *plan,
                                    struct narrowing *out, bool *found)
{
    static const char *const keys[] = {TL_LABEL_INSTANCE_CATEGORY, TL_LABEL_INSTANCE_FAMILY,
                                       TL_LABEL_INSTANCE_SIZE};
    *found = false;
    uint32_t off_plan = 0;
    for (size_t i = 0; i < ctx->in->nnodes; i++) {
        const struct tl_plan_node *n = &ctx->in->nodes[i];
        if (!in_plan(plan, n->instance_type ? n->instance_type : "") &&
            node_allowed(&ctx->in->nodepool->reqs, n))
            off_plan++;
    }
    if (off_plan == 0)
        return TL_OK;
    struct narrowing best;
    memset(&best, 0, sizeof(best));
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        struct narrowing n;
        enum tl_err result = try_narrowing(ctx, keys[k], plan, &n);
        if (result != TL_OK) {
            tl_nodepool_reqs_free(&best.reqs);
            return result;
        }
        bool fits = false;
        if (n.ok && n.excluded > 0) {
            result = schedulable(ctx, &n.reqs, &fits);
            if (result != TL_OK) {
                tl_nodepool_reqs_free(&n.reqs);
                tl_nodepool_reqs_free(&best.reqs);
                return result;
            }
        }
        bool wins = fits && (!best.ok || n.excluded_hourly > best.excluded_hourly + 1e-9 ||
                             (fabs(n.excluded_hourly - best.excluded_hourly) <= 1e-9 &&
                              n.excluded > best.excluded));
        if (wins) {
            tl_nodepool_reqs_free(&best.reqs);
            best = n;
        }
        else {
            tl_nodepool_reqs_free(&n.reqs);
        }
        if (best.ok && best.excluded == off_plan)
            break; /* coarsest complete narrowing */
    }
    if (best.ok) {
        *out = best;
        *found = true;
    }
    return TL_OK;
}

static int64_t round_up(int64_t v, int64_t unit)
{
    return (v + unit - 1) / unit * unit;
}

/* Bits (1 << enum tl_arch) of the architectures the current nodes and a fleet run on. */
static unsigned node_archs(const struct tl_plan_input *in)
{
    unsigned archs = 0;
    for (size_t i = 0; i < in->nnodes; i++) {
        const struct tl_instance_type *t =
            tl_catalog_find(in->nodes[i].instance_type ? in->nodes[i].instance_type : "");
        if (t != NULL && t->arch != TL_ARCH_UNKNOWN)
            archs |= 1u << t->arch;
    }
    return archs;
}

static unsigned fleet_archs(const struct tl_plan_fleet *f)
{
    unsigned archs = 0;
    for (size_t i = 0; i < f->nlines; i++) {
        const struct tl_instance_type *t = tl_catalog_find(f->lines[i].type);
        if (t != NULL && t->arch != TL_ARCH_UNKNOWN)
            archs |= 1u << t->arch;
    }
    return archs;
}

/* ---- The advice ---- */

static double percent_over(double after, double before)
{
    return before > 0 ? (after - before) / before * 100 : 0;
}

/* Limits: room for the plan plus its largest node, so replacements can launch first. */
static enum tl_err advise_limits(struct context *ctx, const struct tl_plan_fleet *after)
{
    const struct tl_nodepool_spec *spec = ctx->in->nodepool;
    struct tl_plan_change c;
    memset(&c, 0, sizeof(c));
    c.kind = TL_PLAN_CHANGE_LIMITS;
    c.field = "spec.limits";
    int64_t big_cpu = 0;
    int64_t big_mem = 0;
    for (size_t i = 0; i < after->nlines; i++) {
        const struct tl_instance_type *t = tl_catalog_find(after->lines[i].type);
        if (t == NULL)
            continue;
        const struct tl_allocatable *a = &ctx->view.alloc[catalog_index(t)];
        big_cpu = a->capacity_cpu_milli > big_cpu ? a->capacity_cpu_milli : big_cpu;
        big_mem = a->capacity_memory_bytes > big_mem ? a->capacity_memory_bytes : big_mem;
    }
    int64_t need_cpu = round_up(after->capacity_cpu_milli + big_cpu, 1000);
    int64_t need_mem = round_up(after->capacity_memory_bytes + big_mem, GIB);
    int64_t need_nodes = (int64_t)after->nodes + 1;
    /* A limit that is unset stays unset; one that is set only ever grows. */
    c.limit_cpu_milli = spec->limit_cpu_milli < 0 || need_cpu <= spec->limit_cpu_milli
                            ? spec->limit_cpu_milli
                            : need_cpu;
    c.limit_memory_bytes = spec->limit_memory_bytes < 0 || need_mem <= spec->limit_memory_bytes
                               ? spec->limit_memory_bytes
                               : need_mem;
    c.limit_nodes =
        spec->limit_nodes < 0 || need_nodes <= spec->limit_nodes ? spec->limit_nodes : need_nodes;
    char cpu[32] = "unset";
    char mem[48] = "unset";
    char nodes[32] = "unset";
    if (c.limit_cpu_milli >= 0)
        format_cores(c.limit_cpu_milli, cpu, sizeof(cpu));
    if (c.limit_memory_bytes >= 0)
        format_bytes(c.limit_memory_bytes, mem, sizeof(mem));
    if (c.limit_nodes >= 0)
        say(nodes, sizeof(nodes), "%lld", (long long)c.limit_nodes);
    char text[160];
    say(text, sizeof(text), "cpu: %s, memory: %s, nodes: %s", cpu, mem, nodes);
    c.summary = strdup(text);
    if (c.summary == NULL)
        return TL_ENOMEM;
    c.monthly_usd = after->monthly_usd;
    format_cores(after->capacity_cpu_milli, cpu, sizeof(cpu));
    format_bytes(after->capacity_memory_bytes, mem, sizeof(mem));
    say(c.note, sizeof(c.note),
        "the plan's nodes have %s CPU and %s of memory; the new limits leave room for one more "
        "node so that replacements can launch before old nodes go",
        cpu, mem);
    enum tl_err result = add_change(ctx, &c);
    if (result != TL_OK)
        change_free(&c);
    return result;
}

/* Consolidation: with WhenEmpty (or consolidateAfter Never) Karpenter keeps a node as long as one
 * pod runs on it, so smaller requests free capacity that is never given back. */
static enum tl_err advise_consolidation(struct context *ctx, const struct tl_plan_fleet *after)
{
    const struct tl_nodepool_spec *spec = ctx->in->nodepool;
    if (spec->consolidation != TL_CONSOLIDATE_WHEN_EMPTY && !spec->consolidate_never)
        return TL_OK;
    struct tl_plan_change c;
    memset(&c, 0, sizeof(c));
    c.kind = TL_PLAN_CHANGE_CONSOLIDATION;
    c.field = "spec.disruption";
    c.consolidation = TL_CONSOLIDATE_WHEN_EMPTY_OR_UNDERUTILIZED;
    c.summary = strdup(spec->consolidate_never
                           ? "consolidationPolicy: WhenEmptyOrUnderutilized, consolidateAfter: "
                             "a duration instead of Never"
                           : "consolidationPolicy: WhenEmptyOrUnderutilized");
    if (c.summary == NULL)
        return TL_ENOMEM;
    c.monthly_usd = after->monthly_usd;
    say(c.note, sizeof(c.note),
        "disruption settings do not drift nodes; budgets still pace the replacements");
    enum tl_err result = add_change(ctx, &c);
    if (result != TL_OK)
        change_free(&c);
    return result;
}

/* Narrowing, when running nodes are of types the plan does not use (see choose_narrowing). */
static enum tl_err advise_narrowing(struct context *ctx, const struct tl_plan_fleet *after)
{
    const struct tl_plan_input *in = ctx->in;
    struct tl_plan_change c;
    memset(&c, 0, sizeof(c));
    struct run narrowed;
    memset(&narrowed, 0, sizeof(narrowed));
    struct narrowing n;
    bool found = false;
    enum tl_err result = choose_narrowing(ctx, after, &n, &found);
    if (result != TL_OK || !found)
        return result;
    c.requirements = n.reqs; /* owned by c from here */
    result = plan_run(in, &ctx->view, &c.requirements, ctx->mode, &ctx->recommended, &narrowed);
    if (result != TL_OK)
        goto out;
    if (!narrowed.planned ||
        narrowed.fleet.monthly_usd > after->monthly_usd * (1 + NARROW_SLACK) + 1e-6)
        goto out; /* it does not reach the plan: no advice to narrow */
    c.kind = TL_PLAN_CHANGE_REQUIREMENTS;
    c.field = "spec.template.spec.requirements";
    c.summary = requirements_summary(&c.requirements, n.key);
    if (c.summary == NULL) {
        result = TL_ENOMEM;
        goto out;
    }
    c.drifted_nodes = count_drift(in, &c.requirements);
    c.drifts = c.drifted_nodes > 0;
    c.monthly_usd = narrowed.fleet.monthly_usd;
    unsigned now = node_archs(in);
    unsigned planned = fleet_archs(after);
    const char *moves = "";
    if ((now & ~planned) != 0)
        moves = (planned & (1u << TL_ARCH_ARM64)) != 0
                    ? "; the plan runs pods on arm64 (Graviton): every image must be built for "
                      "it, or set the pool's kubernetes.io/arch"
                    : "; the plan runs pods on amd64 where nodes are arm64 now";
    say(c.note, sizeof(c.note),
        "rules out %u running node%s of types the plan does not use; Karpenter drifts %u "
        "node%s and replaces them within the disruption budgets%s",
        n.excluded, n.excluded == 1 ? "" : "s", c.drifted_nodes, c.drifted_nodes == 1 ? "" : "s",
        moves);
    result = add_change(ctx, &c);
    if (result != TL_OK)
        goto out;
    ctx->res->monthly_after_usd = narrowed.fleet.monthly_usd;
    memset(&c, 0, sizeof(c)); /* the result owns it now */
out:
    change_free(&c);
    run_free(&narrowed);
    return result;
}

/* Spot: an option with its caveat, never part of the advice; only when it is cheaper. */
static enum tl_err advise_spot(struct context *ctx)
{
    const struct tl_nodepool_spec *spec = ctx->in->nodepool;
    if ((tl_nodepool_reqs_capacity(&spec->reqs) & TL_CAPACITY_SPOT) != 0)
        return TL_OK;
    struct tl_plan_change c;
    memset(&c, 0, sizeof(c));
    struct run spot;
    memset(&spot, 0, sizeof(spot));
    c.kind = TL_PLAN_CHANGE_SPOT;
    c.field = "spec.template.spec.requirements";
    c.optional = true;
    enum tl_err result = tl_nodepool_reqs_allow_spot(&spec->reqs, &c.requirements);
    if (result != TL_OK)
        goto out;
    result =
        plan_run(ctx->in, &ctx->view, &c.requirements, TL_CAPACITY_SPOT, &ctx->recommended, &spot);
    if (result != TL_OK)
        goto out;
    if (!spot.planned || spot.fleet.monthly_usd >= ctx->res->monthly_after_usd - 1e-6)
        goto out;
    c.monthly_usd = spot.fleet.monthly_usd;
    c.summary = requirements_summary(&c.requirements, TL_LABEL_CAPACITY_TYPE);
    if (c.summary == NULL) {
        result = TL_ENOMEM;
        goto out;
    }
    say(c.note, sizeof(c.note),
        "spot nodes can be reclaimed with two minutes' notice: only for pods that tolerate "
        "interruption (stateless, replicated, with PodDisruptionBudgets); adding a value does not "
        "drift running nodes");
    result = add_change(ctx, &c);
    if (result == TL_OK)
        memset(&c, 0, sizeof(c)); /* the result owns it now */
out:
    change_free(&c);
    run_free(&spot);
    return result;
}

/* The changes for a plan: limits when it needs them; consolidation and narrowing when it is
 * cheaper than the current nodes; spot as an option whenever that is cheaper still. */
static enum tl_err advise(struct context *ctx, const struct tl_plan_fleet *after)
{
    enum tl_err result = TL_OK;
    bool cheaper = after->monthly_usd < ctx->res->monthly_before_usd - 1e-6;
    if (!after->within_limits && (result = advise_limits(ctx, after)) != TL_OK)
        return result;
    if (cheaper && ((result = advise_consolidation(ctx, after)) != TL_OK ||
                    (result = advise_narrowing(ctx, after)) != TL_OK))
        return result;
    return advise_spot(ctx);
}

static size_t advised_changes(const struct tl_plan_result *res)
{
    size_t n = 0;
    for (size_t i = 0; i < res->nchanges; i++)
        n += !res->changes[i].optional;
    return n;
}

static void verdict(struct context *ctx, const struct tl_plan_fleet *after)
{
    struct tl_plan_result *res = ctx->res;
    double before = res->monthly_before_usd;
    double planned = res->monthly_after_usd;
    double limit = ctx->in->max_cost_increase_percent;
    res->monthly_savings_usd = before - planned;
    char limits[128] = "";
    if (!after->within_limits) {
        char cpu[32];
        char mem[48];
        format_cores(after->capacity_cpu_milli, cpu, sizeof(cpu));
        format_bytes(after->capacity_memory_bytes, mem, sizeof(mem));
        say(limits, sizeof(limits), "; the plan's nodes (%s CPU, %s) also exceed spec.limits", cpu,
            mem);
    }
    if (planned > before * (1 + limit / 100) + 1e-6) {
        res->verdict = TL_PLAN_NO_ADVICE;
        if (before > 0)
            say(res->reason, sizeof(res->reason),
                "no cheaper plan: the plan costs $%.2f/month, %.1f%% more than the $%.2f/month "
                "of the current nodes, above the %.0f%% guard%s",
                planned, percent_over(planned, before), before, limit, limits);
        else
            say(res->reason, sizeof(res->reason),
                "no cheaper plan: the plan costs $%.2f/month and no priced node runs now%s",
                planned, limits);
        return;
    }
    size_t n = advised_changes(res);
    if (planned < before - 1e-6 || n > 0) {
        if (n == 0) {
            res->verdict = TL_PLAN_NO_CHANGE_NEEDED;
            say(res->reason, sizeof(res->reason),
                "no NodePool change needed: consolidation can take %u nodes ($%.2f/month) to %u "
                "($%.2f/month) as pods shrink",
                res->before.nodes, before, after->nodes, planned);
            return;
        }
        res->verdict = TL_PLAN_CHANGE;
        if (planned < before - 1e-6)
            say(res->reason, sizeof(res->reason),
                "%zu change%s take %u nodes ($%.2f/month) to %u ($%.2f/month), saving $%.2f/month",
                n, n == 1 ? "" : "s", res->before.nodes, before, after->nodes, planned,
                before - planned);
        else
            say(res->reason, sizeof(res->reason),
                "%zu change%s make room for the pods: %u nodes ($%.2f/month) against %u "
                "($%.2f/month) now, within the %.0f%% guard",
                n, n == 1 ? "" : "s", after->nodes, planned, res->before.nodes, before, limit);
        return;
    }
    res->verdict = TL_PLAN_NO_ADVICE;
    say(res->reason, sizeof(res->reason),
        "no cheaper plan: the current nodes cost $%.2f/month and the recommended requests need "
        "$%.2f/month",
        before, planned);
}

/* Costs compared with nodes we could not price are understated: the reason says so. */
static void note_unpriced(struct tl_plan_result *res)
{
    if (res->before.unpriced_nodes == 0)
        return;
    size_t at = strlen(res->reason);
    say(res->reason + at, sizeof(res->reason) - at,
        " (%u current node%s without a price in the region count as $0)",
        res->before.unpriced_nodes, res->before.unpriced_nodes == 1 ? "" : "s");
}

static void drop_advice(struct tl_plan_result *res)
{
    /* Keep only the optional entries: the guard vetoed the rest. */
    size_t w = 0;
    for (size_t i = 0; i < res->nchanges; i++) {
        if (res->changes[i].optional)
            res->changes[w++] = res->changes[i];
        else
            change_free(&res->changes[i]);
    }
    res->nchanges = w;
}

void tl_nodepool_plan_result_free(struct tl_plan_result *result)
{
    if (result == NULL)
        return;
    fleet_free(&result->before);
    fleet_free(&result->after_current);
    fleet_free(&result->after_recommended);
    for (size_t i = 0; i < result->nchanges; i++)
        change_free(&result->changes[i]);
    free(result->changes);
    memset(result, 0, sizeof(*result));
}

static enum tl_err input_check(const struct tl_plan_input *in)
{
    if (in == NULL || in->region == NULL || in->nodepool == NULL ||
        (in->npods > 0 && in->pods == NULL) || (in->nnodes > 0 && in->nodes == NULL) ||
        !(in->max_cost_increase_percent >= 0))
        return TL_EINVAL;
    if (in->npods > TL_PLAN_PODS_MAX || in->nnodes > TL_PLAN_NODES_MAX)
        return TL_ETOOBIG;
    for (size_t i = 0; i < in->npods; i++) {
        const struct tl_plan_pod *p = &in->pods[i];
        if (p->cpu_milli < 0 || p->memory_bytes < 0 || p->rec_cpu_milli < 0 ||
            p->rec_memory_bytes < 0)
            return TL_EINVAL;
        /* Bounded so that sums over every pod fit in 64 bits. */
        if (p->cpu_milli > TL_PLAN_CPU_MILLI_MAX || p->rec_cpu_milli > TL_PLAN_CPU_MILLI_MAX ||
            p->memory_bytes > TL_PLAN_MEMORY_BYTES_MAX ||
            p->rec_memory_bytes > TL_PLAN_MEMORY_BYTES_MAX)
            return TL_ERANGE;
    }
    return TL_OK;
}

enum tl_err tl_nodepool_plan_compute(const struct tl_plan_input *input, struct tl_plan_result *out)
{
    enum tl_err result = out == NULL ? TL_EINVAL : input_check(input);
    if (result != TL_OK)
        return result;
    if (!tl_catalog_region_known(input->region))
        return TL_ENOTFOUND;
    struct tl_plan_result res;
    memset(&res, 0, sizeof(res));
    struct context ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.in = input;
    ctx.res = &res;
    struct run cur;
    struct run rec;
    memset(&cur, 0, sizeof(cur));
    memset(&rec, 0, sizeof(rec));

    result = view_build(input->region, &input->allocatable, &ctx.view);
    if (result != TL_OK)
        return result;
    if ((result = workload_build(input, false, &ctx.current)) != TL_OK ||
        (result = workload_build(input, true, &ctx.recommended)) != TL_OK ||
        (result = fleet_from_nodes(input, &ctx.view, &res.before)) != TL_OK)
        goto out;
    res.monthly_before_usd = res.before.monthly_usd;

    unsigned mask = tl_nodepool_reqs_capacity(&input->nodepool->reqs);
    ctx.mode = (mask & TL_CAPACITY_SPOT) ? TL_CAPACITY_SPOT : TL_CAPACITY_ON_DEMAND;
    res.planned_capacity = ctx.mode;
    if (mask == 0) {
        res.verdict = TL_PLAN_NO_ADVICE;
        say(res.reason, sizeof(res.reason),
            "the requirements allow neither on-demand nor spot capacity");
        goto done;
    }
    if ((result = plan_run(input, &ctx.view, &input->nodepool->reqs, ctx.mode, &ctx.current,
                           &cur)) != TL_OK ||
        (result = plan_run(input, &ctx.view, &input->nodepool->reqs, ctx.mode, &ctx.recommended,
                           &rec)) != TL_OK)
        goto out;
    res.allowed_types = rec.nallowed;
    res.candidate_types = rec.ncandidates;
    res.after_current = cur.fleet;
    res.after_recommended = rec.fleet;
    memset(&cur.fleet, 0, sizeof(cur.fleet));
    memset(&rec.fleet, 0, sizeof(rec.fleet));
    if (rec.ncandidates == 0) {
        res.verdict = TL_PLAN_NO_ADVICE;
        say(res.reason, sizeof(res.reason),
            "no instance type the requirements allow has a price in %s and room for pods",
            input->region);
        goto done;
    }
    /* A pod that fits nowhere now, or after right-sizing, blocks any advice. */
    if (cur.misfit.any || rec.misfit.any) {
        res.verdict = TL_PLAN_NO_ADVICE;
        const struct workload *w = cur.misfit.any ? &ctx.current : &ctx.recommended;
        describe_misfit(input, w, cur.misfit.any ? &cur.misfit : &rec.misfit, res.reason,
                        sizeof(res.reason));
        goto done;
    }
    res.monthly_after_usd = res.after_recommended.monthly_usd;
    result = advise(&ctx, &res.after_recommended);
    if (result != TL_OK)
        goto out;
    verdict(&ctx, &res.after_recommended);
    if (res.verdict == TL_PLAN_NO_ADVICE)
        drop_advice(&res);
    note_unpriced(&res);
done:
    *out = res;
    memset(&res, 0, sizeof(res));
out:
    tl_nodepool_plan_result_free(&res);
    run_free(&cur);
    run_free(&rec);
    workload_free(&ctx.current);
    workload_free(&ctx.recommended);
    view_free(&ctx.view);
    return result;
}

/* ---- Summary ---- */

struct sbuf {
    char *buf;
    size_t len, at;
    bool cut;
};

static void sput(struct sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sput(struct sbuf *s, const char *fmt, ...)
{
    if (s->cut)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->buf + s->at, s->len - s->at, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= s->len - s->at) {
        s->cut = true;
        return;
    }
    s->at += (size_t)n;
}

static void put_fleet(struct sbuf *s, const char *title, const struct tl_plan_fleet *f)
{
    sput(s, "%-22s %5u nodes  $%10.2f/month (on-demand $%.2f, spot $%.2f)%s\n", title, f->nodes,
         f->monthly_usd, f->monthly_ondemand_usd, f->monthly_spot_usd,
         f->within_limits ? "" : "  EXCEEDS spec.limits");
    for (size_t i = 0; i < f->nlines && i < 6; i++)
        sput(s, "%24s%5u x %s %s\n", "", f->lines[i].count, f->lines[i].type,
             tl_capacity_type_name(f->lines[i].capacity));
    if (f->nlines > 6)
        sput(s, "%24s... %zu more types\n", "", f->nlines - 6);
}

enum tl_err tl_nodepool_plan_summary(const struct tl_plan_result *result, char *buf, size_t len)
{
    if (result == NULL || buf == NULL || len == 0)
        return TL_EINVAL;
    struct sbuf s = {buf, len, 0, false};
    buf[0] = '\0';
    static const char *const verdicts[] = {"no advice", "no change needed", "change"};
    put_fleet(&s, "before:", &result->before);
    put_fleet(&s, "plan, current requests:", &result->after_current);
    put_fleet(&s, "plan, recommended:", &result->after_recommended);
    sput(&s, "types: %zu allowed, %zu candidates; priced at %s\n", result->allowed_types,
         result->candidate_types, tl_capacity_type_name(result->planned_capacity));
    sput(&s, "verdict: %s: %s\n", verdicts[result->verdict], result->reason);
    for (size_t i = 0; i < result->nchanges; i++) {
        const struct tl_plan_change *c = &result->changes[i];
        sput(&s, "  %s %s: %s ($%.2f/month, ", c->optional ? "(option)" : "-", c->field,
             c->summary ? c->summary : "", c->monthly_usd);
        if (c->drifts)
            sput(&s, "drifts %u node%s)\n", c->drifted_nodes, c->drifted_nodes == 1 ? "" : "s");
        else
            sput(&s, "no drift)\n");
    }
    return s.cut ? TL_ETOOBIG : TL_OK;
}
