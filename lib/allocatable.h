/* allocatable: the CPU, memory and pod slots Karpenter on AWS expects a node of one EC2 instance
 * type to offer pods: capacity less VM overhead, kube-reserved, system-reserved and eviction. */
#ifndef TL_ALLOCATABLE_H
#define TL_ALLOCATABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"
#include "error.h"

/*
 * The EC2NodeClass kubelet settings and Karpenter options that change allocatable. The defaults
 * are Karpenter's on AL2023 (and AL2) with no kubelet block; docs/nodepools.md lists the sources.
 */
struct tl_allocatable_options {
    int32_t max_pods;                   /* kubelet maxPods; 0: the ENI-limited estimate */
    int32_t pods_per_core;              /* kubelet podsPerCore; 0: unset */
    double vm_memory_overhead_percent;  /* Karpenter's vmMemoryOverheadPercent, 0.075 */
    int64_t eviction_memory_bytes;      /* evictionHard memory.available, 100Mi */
    int64_t kube_reserved_cpu_milli;    /* < 0: Karpenter's tiered default */
    int64_t kube_reserved_memory_bytes; /* < 0: 11 MiB per pod + 255 MiB */
    int64_t system_reserved_cpu_milli;  /* none by default */
    int64_t system_reserved_memory_bytes;
    /* Bottlerocket sizes the kube-reserved memory by maxPods; AL2 and AL2023 by the ENI limit
     * even when maxPods is set. */
    bool reserve_memory_by_max_pods;
};

/* One instance type's capacity, what is held back, and what is left for pods. */
struct tl_allocatable {
    int64_t capacity_cpu_milli;    /* the vCPUs */
    int64_t capacity_memory_bytes; /* after the VM overhead: what NodePool limits count */
    int64_t kube_reserved_cpu_milli;
    int64_t kube_reserved_memory_bytes;
    int64_t system_reserved_cpu_milli;
    int64_t system_reserved_memory_bytes;
    int64_t eviction_memory_bytes;
    int64_t cpu_milli; /* allocatable: never negative */
    int64_t memory_bytes;
    int32_t pods;
};

void tl_allocatable_options_defaults(struct tl_allocatable_options *options);

/*
 * Computes what a node of type (borrowed, usually from the catalog) offers pods. TL_EINVAL when
 * type or options is NULL or an option is negative where it must not be; *out untouched then.
 */
enum tl_err tl_allocatable_compute(const struct tl_instance_type *type,
                                   const struct tl_allocatable_options *options,
                                   struct tl_allocatable *out);

/*
 * Pods the VPC CNI allows on the type without prefix delegation, ENIs * (IPv4 per ENI - 1) + 2,
 * estimated from the size name because the ENI table is not in the catalog (see
 * docs/nodepools.md): 110, the kubelet default, when the size is not recognised.
 */
int32_t tl_allocatable_eni_pods(const struct tl_instance_type *type);

/* Karpenter's default kube-reserved CPU for this many vCPUs (6%, 1%, 0.5%, 0.25% tiers). */
int64_t tl_allocatable_kube_reserved_cpu(int64_t capacity_cpu_milli);

/* Karpenter's default kube-reserved memory for this many pods: (11 * pods + 255) MiB. */
int64_t tl_allocatable_kube_reserved_memory(int32_t pods);

#endif
