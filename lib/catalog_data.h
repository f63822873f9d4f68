/* catalog_data: the embedded EC2 tables that scripts/gen_catalog.py generates; read via catalog.h.
 */
#ifndef TL_CATALOG_DATA_H
#define TL_CATALOG_DATA_H

#include <stddef.h>
#include <stdint.h>

enum tl_arch { TL_ARCH_UNKNOWN, TL_ARCH_AMD64, TL_ARCH_ARM64 };

/* One EC2 instance type (data/ec2/instances.csv). */
struct tl_instance_type {
    const char *name; /* "m5.xlarge" */
    const char *family;
    uint8_t generation;
    uint8_t arch; /* enum tl_arch */
    uint16_t vcpu;
    uint16_t gpu;
    double memory_gib;
    double ondemand_us_east_1; /* USD per hour; < 0 when unpriced there */
};

/* A (region, type) value, sorted by region then type index. */
struct tl_catalog_entry {
    uint16_t region;
    uint16_t type;
    double value;
};

extern const char *const tl_catalog_regions[]; /* sorted */
extern const size_t tl_catalog_region_count;
extern const struct tl_instance_type tl_catalog_types[]; /* sorted by name */
extern const size_t tl_catalog_type_count;
extern const struct tl_catalog_entry tl_catalog_ondemand[]; /* USD per hour */
extern const size_t tl_catalog_ondemand_count;
extern const struct tl_catalog_entry tl_catalog_spot[]; /* savings versus on-demand, percent */
extern const size_t tl_catalog_spot_count;

#endif
