#include "allocatable.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MIB                      INT64_C(1048576)
#define KUBELET_DEFAULT_MAX_PODS 110

void tl_allocatable_options_defaults(struct tl_allocatable_options *options)
{
    memset(options, 0, sizeof(*options));
    options->vm_memory_overhead_percent = 0.075;
    options->eviction_memory_bytes = 100 * MIB;
    options->kube_reserved_cpu_milli = -1;
    options->kube_reserved_memory_bytes = -1;
}

/* t2, t3, t3a, t4g: burstable types get more addresses per ENI at the small sizes. */
static bool burstable(const char *family)
{
    return family[0] == 't' && family[1] >= '0' && family[1] <= '9';
}

/*
 * The VPC CNI limit is ENIs * (IPv4 addresses per ENI - 1) + 2 (amazon-eks-ami eni-max-pods.txt;
 * Karpenter's ENILimitedPods). The ENI table is not in our catalog, so the limit is read off the
 * size, using the values current Nitro families (c5..c8, m5..m8, r5..r8, Graviton) share:
 * large 3 x 10 -> 29, xlarge to 3xlarge 4 x 15 -> 58, 4xlarge to 12xlarge 8 x 30 -> 234,
 * 16xlarge and up and metal 15 x 50 -> 737. Older or special families differ (m4.large is 20,
 * r4.16xlarge 452); a NodeClass that sets maxPods overrides this anyway.
 */
int32_t tl_allocatable_eni_pods(const struct tl_instance_type *type)
{
    const char *dot = type ? strchr(type->name, '.') : NULL;
    if (dot == NULL)
        return KUBELET_DEFAULT_MAX_PODS;
    const char *size = dot + 1;
    bool burst = burstable(type->family);
    if (strcmp(size, "nano") == 0 || strcmp(size, "micro") == 0)
        return 4;
    if (strcmp(size, "small") == 0)
        return 11;
    if (strcmp(size, "medium") == 0)
        return burst ? 17 : 8;
    if (strcmp(size, "large") == 0)
        return burst ? 35 : 29;
    if (strcmp(size, "xlarge") == 0)
        return 58;
    if (strncmp(size, "metal", 5) == 0)
        return 737;
    char *end = NULL;
    errno = 0;
    long multiple = strtol(size, &end, 10);
    if (errno != 0 || end == size || strcmp(end, "xlarge") != 0 || multiple <= 0)
        return KUBELET_DEFAULT_MAX_PODS;
    if (multiple <= 3)
        return 58;
    if (multiple <= 12)
        return 234;
    return 737;
}

/*
 * Karpenter's kubeReservedResources (from Bottlerocket's defaults): 6% of the first core, 1% of
 * the second, 0.5% of the third and fourth, 0.25% of every core above four. Each tier is
 * truncated to whole millicores as Karpenter does; integer arithmetic gives the exact product
 * where Go multiplies floats, which agrees on every whole number of vCPUs.
 */
int64_t tl_allocatable_kube_reserved_cpu(int64_t capacity_cpu_milli)
{
    static const struct {
        int64_t start, end, per_100000;
    } tiers[] = {{0, 1000, 6000}, {1000, 2000, 1000}, {2000, 4000, 500}, {4000, INT64_MAX, 250}};
    int64_t reserved = 0;
    for (size_t i = 0; i < sizeof(tiers) / sizeof(tiers[0]); i++) {
        if (capacity_cpu_milli < tiers[i].start)
            break;
        int64_t span = capacity_cpu_milli < tiers[i].end ? capacity_cpu_milli - tiers[i].start
                                                         : tiers[i].end - tiers[i].start;
        reserved += span * tiers[i].per_100000 / 100000;
    }
    return reserved;
}

int64_t tl_allocatable_kube_reserved_memory(int32_t pods)
{
    return ((int64_t)11 * pods + 255) * MIB;
}

static int64_t clamp_positive(int64_t v)
{
    return v > 0 ? v : 0;
}

enum tl_err tl_allocatable_compute(const struct tl_instance_type *type,
                                   const struct tl_allocatable_options *options,
                                   struct tl_allocatable *out)
{
    if (type == NULL || options == NULL || options->max_pods < 0 || options->pods_per_core < 0 ||
        options->vm_memory_overhead_percent < 0 || options->vm_memory_overhead_percent >= 1 ||
        options->eviction_memory_bytes < 0 || options->system_reserved_cpu_milli < 0 ||
        options->system_reserved_memory_bytes < 0)
        return TL_EINVAL;

    struct tl_allocatable a;
    memset(&a, 0, sizeof(a));
    a.capacity_cpu_milli = (int64_t)type->vcpu * 1000;

    /* Karpenter's memory(): the instance's MiB, less the 64 MiB Graviton keeps for CMA, less
     * ceil(vmMemoryOverheadPercent of that) MiB the hypervisor and firmware take. */
    int64_t mib = llround(type->memory_gib * 1024.0);
    if (type->arch == TL_ARCH_ARM64)
        mib -= 64;
    mib -= (int64_t)ceil((double)mib * options->vm_memory_overhead_percent);
    a.capacity_memory_bytes = clamp_positive(mib) * MIB;

    int32_t eni_pods = tl_allocatable_eni_pods(type);
    int32_t pods = options->max_pods > 0 ? options->max_pods : eni_pods;
    if (options->pods_per_core > 0 && (int64_t)options->pods_per_core * type->vcpu < pods)
        pods = options->pods_per_core * type->vcpu;
    a.pods = pods;

    a.kube_reserved_cpu_milli = options->kube_reserved_cpu_milli >= 0
                                    ? options->kube_reserved_cpu_milli
                                    : tl_allocatable_kube_reserved_cpu(a.capacity_cpu_milli);
    a.kube_reserved_memory_bytes = options->kube_reserved_memory_bytes >= 0
                                       ? options->kube_reserved_memory_bytes
                                       : tl_allocatable_kube_reserved_memory(
                                             options->reserve_memory_by_max_pods ? pods : eni_pods);
    a.system_reserved_cpu_milli = options->system_reserved_cpu_milli;
    a.system_reserved_memory_bytes = options->system_reserved_memory_bytes;
    a.eviction_memory_bytes = options->eviction_memory_bytes;

    a.cpu_milli = clamp_positive(a.capacity_cpu_milli - a.kube_reserved_cpu_milli -
                                 a.system_reserved_cpu_milli);
    a.memory_bytes = clamp_positive(a.capacity_memory_bytes - a.kube_reserved_memory_bytes -
                                    a.system_reserved_memory_bytes - a.eviction_memory_bytes);
    *out = a;
    return TL_OK;
}
