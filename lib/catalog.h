/* catalog: EC2 instance types, on-demand prices and spot savings by region (embedded at build
 * time). */
#ifndef TL_CATALOG_H
#define TL_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog_data.h"
#include "error.h"

/* Borrowed from the embedded table (valid for the program's life), or NULL when unknown. */
const struct tl_instance_type *tl_catalog_find(const char *name);

/* On-demand Linux price in USD per hour; TL_ENOTFOUND when the region does not sell the type. */
enum tl_err tl_catalog_ondemand_price(const char *region, const char *type, double *usd_hour);

/* Spot saving versus on-demand, in percent, from the Spot Instance Advisor; TL_ENOTFOUND if none.
 */
enum tl_err tl_catalog_spot_savings(const char *region, const char *type, double *percent);

bool tl_catalog_region_known(const char *region);

/* Hourly rates that split a node's price between its vCPUs and its memory. */
struct tl_cost_rates {
    double cpu_core_hour;
    double memory_gib_hour;
};

/*
 * Fits price = a * vCPU + b * GiB by least squares over the given types' on-demand prices in the
 * region (the method OpenCost and cloud billing splits use). When the types all have one shape
 * (one memory-to-CPU ratio) the fit is underdetermined: the region's general-purpose ratio is
 * scaled to their price instead. TL_ENOTFOUND when none of the types has a price there.
 */
enum tl_err tl_cost_rates_fit(const char *region, const char *const *types, size_t ntypes,
                              struct tl_cost_rates *out);

/* Rates for a region from its current general-purpose x86 families (c, m and r of one generation).
 */
enum tl_err tl_cost_rates_for_region(const char *region, struct tl_cost_rates *out);

#define TL_HOURS_PER_MONTH 730.0

/* Monthly cost in USD of the given cores and GiB at these rates. */
double tl_cost_monthly(const struct tl_cost_rates *rates, double cores, double memory_gib);

#endif
