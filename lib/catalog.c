#include "catalog.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int compare_type_name(const void *key, const void *element)
{
    return strcmp(key, ((const struct tl_instance_type *)element)->name);
}

static int compare_region(const void *key, const void *element)
{
    return strcmp(key, *(const char *const *)element);
}

const struct tl_instance_type *tl_catalog_find(const char *name)
{
    return bsearch(name, tl_catalog_types, tl_catalog_type_count, sizeof(tl_catalog_types[0]),
                   compare_type_name);
}

static long region_index(const char *region)
{
    const char *const *hit = bsearch(region, tl_catalog_regions, tl_catalog_region_count,
                                     sizeof(tl_catalog_regions[0]), compare_region);
    return hit ? (long)(hit - tl_catalog_regions) : -1;
}

bool tl_catalog_region_known(const char *region)
{
    return region_index(region) >= 0;
}

static int compare_entry(const void *key, const void *element)
{
    const struct tl_catalog_entry *a = key;
    const struct tl_catalog_entry *b = element;
    if (a->region != b->region)
        return a->region < b->region ? -1 : 1;
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    return 0;
}

static enum tl_err lookup(const struct tl_catalog_entry *table, size_t count, const char *region,
                          const char *type, double *out)
{
    long r = region_index(region);
    const struct tl_instance_type *t = tl_catalog_find(type);
    if (r < 0 || t == NULL)
        return TL_ENOTFOUND;
    struct tl_catalog_entry key = {(uint16_t)r, (uint16_t)(t - tl_catalog_types), 0};
    const struct tl_catalog_entry *hit = bsearch(&key, table, count, sizeof(*table), compare_entry);
    if (hit == NULL)
        return TL_ENOTFOUND;
    *out = hit->value;
    return TL_OK;
}

enum tl_err tl_catalog_ondemand_price(const char *region, const char *type, double *usd_hour)
{
    return lookup(tl_catalog_ondemand, tl_catalog_ondemand_count, region, type, usd_hour);
}

enum tl_err tl_catalog_spot_savings(const char *region, const char *type, double *percent)
{
    return lookup(tl_catalog_spot, tl_catalog_spot_count, region, type, percent);
}

/* Sums for the 2x2 normal equations of price = a * vcpu + b * gib (no intercept). */
struct fit_sums {
    double vv, vm, mm, pv, pm, price, vcpu, gib;
    size_t n;
};

static void add_point(struct fit_sums *s, double vcpu, double gib, double price)
{
    s->vv += vcpu * vcpu;
    s->vm += vcpu * gib;
    s->mm += gib * gib;
    s->pv += price * vcpu;
    s->pm += price * gib;
    s->price += price;
    s->vcpu += vcpu;
    s->gib += gib;
    s->n++;
}

/* Solves the fit; false when the shapes leave it underdetermined or a rate comes out negative. */
static bool solve(const struct fit_sums *s, struct tl_cost_rates *out)
{
    double det = s->vv * s->mm - s->vm * s->vm;
    if (s->n < 2 || fabs(det) < 1e-9 * s->vv * s->mm)
        return false;
    double a = (s->pv * s->mm - s->pm * s->vm) / det;
    double b = (s->pm * s->vv - s->pv * s->vm) / det;
    if (a <= 0 || b <= 0)
        return false;
    out->cpu_core_hour = a;
    out->memory_gib_hour = b;
    return true;
}

enum tl_err tl_cost_rates_for_region(const char *region, struct tl_cost_rates *out)
{
    /* One generation of the three general-purpose shapes (2, 4 and 8 GiB per vCPU), newest first,
     * so the fit sees every ratio at the same technology and discount level. */
    static const char *const generations[][3] = {
        {"c7i", "m7i", "r7i"}, {"c6i", "m6i", "r6i"}, {"c5", "m5", "r5"}};
    for (size_t g = 0; g < sizeof(generations) / sizeof(generations[0]); g++) {
        struct fit_sums sums;
        memset(&sums, 0, sizeof(sums));
        for (size_t i = 0; i < tl_catalog_type_count; i++) {
            const struct tl_instance_type *t = &tl_catalog_types[i];
            bool wanted = false;
            for (size_t f = 0; f < 3; f++)
                wanted = wanted || strcmp(t->family, generations[g][f]) == 0;
            double price;
            if (!wanted || strstr(t->name, "metal") ||
                tl_catalog_ondemand_price(region, t->name, &price) != TL_OK)
                continue;
            add_point(&sums, t->vcpu, t->memory_gib, price);
        }
        if (solve(&sums, out))
            return TL_OK;
    }
    return TL_ENOTFOUND;
}

enum tl_err tl_cost_rates_fit(const char *region, const char *const *types, size_t ntypes,
                              struct tl_cost_rates *out)
{
    struct fit_sums sums;
    memset(&sums, 0, sizeof(sums));
    for (size_t i = 0; i < ntypes; i++) {
        const struct tl_instance_type *t = tl_catalog_find(types[i]);
        double price;
        if (t && tl_catalog_ondemand_price(region, types[i], &price) == TL_OK)
            add_point(&sums, t->vcpu, t->memory_gib, price);
    }
    if (sums.n == 0)
        return TL_ENOTFOUND;
    if (solve(&sums, out))
        return TL_OK;
    /* One shape: keep the region's CPU-to-memory price ratio, scaled to what these types cost. */
    struct tl_cost_rates regional;
    enum tl_err result = tl_cost_rates_for_region(region, &regional);
    if (result != TL_OK)
        return result;
    double regional_price =
        regional.cpu_core_hour * sums.vcpu + regional.memory_gib_hour * sums.gib;
    double scale = sums.price / regional_price;
    out->cpu_core_hour = regional.cpu_core_hour * scale;
    out->memory_gib_hour = regional.memory_gib_hour * scale;
    return TL_OK;
}

double tl_cost_monthly(const struct tl_cost_rates *rates, double cores, double memory_gib)
{
    return (rates->cpu_core_hour * cores + rates->memory_gib_hour * memory_gib) *
           TL_HOURS_PER_MONTH;
}
