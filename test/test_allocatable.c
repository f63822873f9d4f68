#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "allocatable.h"

#define MIB INT64_C(1048576)

static struct tl_allocatable compute(const char *name)
{
    struct tl_allocatable_options options;
    tl_allocatable_options_defaults(&options);
    const struct tl_instance_type *t = tl_catalog_find(name);
    assert_non_null(t);
    struct tl_allocatable a;
    assert_int_equal(tl_allocatable_compute(t, &options, &a), TL_OK);
    return a;
}

/*
 * m5.xlarge: 4 vCPU, 16384 MiB, amd64, 58 ENI pods (4 ENIs x (15 - 1) + 2).
 *   kube-reserved CPU = 6% of 1000 + 1% of 1000 + 0.5% of 2000 = 60 + 10 + 10 = 80m
 *   cpu = 4000 - 80 = 3920m
 *   VM overhead = ceil(16384 * 0.075) = ceil(1228.8) = 1229 MiB -> capacity 15155 MiB
 *   kube-reserved memory = 11 * 58 + 255 = 893 MiB; eviction 100 MiB
 *   memory = 15155 - 893 - 100 = 14162 MiB
 * Karpenter's own instance-types page lists 3920m / 14162Mi / 58 for the 4 vCPU, 16 GiB types.
 */
static void test_m5_xlarge(void **state)
{
    (void)state;
    struct tl_allocatable a = compute("m5.xlarge");
    assert_int_equal(a.capacity_cpu_milli, 4000);
    assert_int_equal(a.kube_reserved_cpu_milli, 80);
    assert_int_equal(a.cpu_milli, 3920);
    assert_int_equal(a.capacity_memory_bytes, 15155 * MIB);
    assert_int_equal(a.kube_reserved_memory_bytes, 893 * MIB);
    assert_int_equal(a.eviction_memory_bytes, 100 * MIB);
    assert_int_equal(a.memory_bytes, 14162 * MIB);
    assert_int_equal(a.pods, 58);
}

/*
 * c6g.large: 2 vCPU, 4096 MiB, arm64 (Graviton keeps 64 MiB for CMA), 29 ENI pods (3 x 9 + 2).
 *   cpu = 2000 - (60 + 10) = 1930m
 *   4096 - 64 = 4032 MiB; VM overhead ceil(4032 * 0.075) = ceil(302.4) = 303 -> 3729 MiB
 *   memory = 3729 - (11 * 29 + 255 = 574) - 100 = 3055 MiB
 */
static void test_c6g_large_graviton(void **state)
{
    (void)state;
    struct tl_allocatable a = compute("c6g.large");
    assert_int_equal(a.cpu_milli, 1930);
    assert_int_equal(a.capacity_memory_bytes, 3729 * MIB);
    assert_int_equal(a.kube_reserved_memory_bytes, 574 * MIB);
    assert_int_equal(a.memory_bytes, 3055 * MIB);
    assert_int_equal(a.pods, 29);
}

/*
 * r5.4xlarge: 16 vCPU, 131072 MiB, 234 ENI pods (8 x 29 + 2).
 *   kube-reserved CPU = 60 + 10 + 10 + 0.25% of 12000 (30) = 110m -> cpu 15890m
 *   VM overhead ceil(131072 * 0.075) = ceil(9830.4) = 9831 -> 121241 MiB
 *   memory = 121241 - (11 * 234 + 255 = 2829) - 100 = 118312 MiB
 */
static void test_r5_4xlarge(void **state)
{
    (void)state;
    struct tl_allocatable a = compute("r5.4xlarge");
    assert_int_equal(a.kube_reserved_cpu_milli, 110);
    assert_int_equal(a.cpu_milli, 15890);
    assert_int_equal(a.capacity_memory_bytes, 121241 * MIB);
    assert_int_equal(a.memory_bytes, 118312 * MIB);
    assert_int_equal(a.pods, 234);
}

/* The tiers, by hand: 1 core 60m; 2 cores 70m; 3 cores 75m; 96 cores 60+10+10+0.25% of 92000. */
static void test_kube_reserved_cpu_tiers(void **state)
{
    (void)state;
    assert_int_equal(tl_allocatable_kube_reserved_cpu(0), 0);
    assert_int_equal(tl_allocatable_kube_reserved_cpu(1000), 60);
    assert_int_equal(tl_allocatable_kube_reserved_cpu(2000), 70);
    assert_int_equal(tl_allocatable_kube_reserved_cpu(3000), 75);
    assert_int_equal(tl_allocatable_kube_reserved_cpu(4000), 80);
    assert_int_equal(tl_allocatable_kube_reserved_cpu(96000), 80 + 230);
    assert_int_equal(tl_allocatable_kube_reserved_memory(110), (11 * 110 + 255) * MIB);
}

static void test_eni_pod_estimate_by_size(void **state)
{
    (void)state;
    static const struct {
        const char *type;
        int32_t pods;
    } cases[] = {
        {"m5.large", 29},     {"m5.2xlarge", 58},   {"c5.9xlarge", 234}, {"m5.12xlarge", 234},
        {"m5.16xlarge", 737}, {"m5.24xlarge", 737}, {"m5.metal", 737},   {"c6g.medium", 8},
        {"t3.medium", 17},    {"t3.large", 35},     {"t3.micro", 4},     {"m7i.48xlarge", 737},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct tl_instance_type *t = tl_catalog_find(cases[i].type);
        assert_non_null(t);
        assert_int_equal(tl_allocatable_eni_pods(t), cases[i].pods);
    }
}

/* maxPods and podsPerCore cap the pods; on AL2023 kube-reserved memory still follows the ENI
 * limit, on Bottlerocket it follows maxPods. */
static void test_kubelet_overrides(void **state)
{
    (void)state;
    const struct tl_instance_type *t = tl_catalog_find("m5.xlarge");
    struct tl_allocatable_options options;
    tl_allocatable_options_defaults(&options);
    options.max_pods = 110;
    struct tl_allocatable a;
    assert_int_equal(tl_allocatable_compute(t, &options, &a), TL_OK);
    assert_int_equal(a.pods, 110);
    assert_int_equal(a.kube_reserved_memory_bytes, 893 * MIB); /* still 11 * 58 + 255 */
    options.reserve_memory_by_max_pods = true;
    assert_int_equal(tl_allocatable_compute(t, &options, &a), TL_OK);
    assert_int_equal(a.kube_reserved_memory_bytes, (11 * 110 + 255) * MIB);
    options.pods_per_core = 4; /* 4 * 4 vCPU = 16 < 110 */
    assert_int_equal(tl_allocatable_compute(t, &options, &a), TL_OK);
    assert_int_equal(a.pods, 16);

    /* System-reserved and an explicit kube-reserved come straight off. */
    tl_allocatable_options_defaults(&options);
    options.system_reserved_cpu_milli = 100;
    options.system_reserved_memory_bytes = 100 * MIB;
    options.kube_reserved_cpu_milli = 200;
    options.kube_reserved_memory_bytes = 500 * MIB;
    assert_int_equal(tl_allocatable_compute(t, &options, &a), TL_OK);
    assert_int_equal(a.cpu_milli, 4000 - 200 - 100);
    assert_int_equal(a.memory_bytes, (15155 - 500 - 100 - 100) * MIB);
}

static void test_rejects_bad_input_and_leaves_output(void **state)
{
    (void)state;
    struct tl_allocatable_options options;
    tl_allocatable_options_defaults(&options);
    struct tl_allocatable a = {.cpu_milli = 42};
    assert_int_equal(tl_allocatable_compute(NULL, &options, &a), TL_EINVAL);
    options.vm_memory_overhead_percent = 1.5;
    assert_int_equal(tl_allocatable_compute(tl_catalog_find("m5.large"), &options, &a), TL_EINVAL);
    assert_int_equal(a.cpu_milli, 42);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_m5_xlarge),
        cmocka_unit_test(test_c6g_large_graviton),
        cmocka_unit_test(test_r5_4xlarge),
        cmocka_unit_test(test_kube_reserved_cpu_tiers),
        cmocka_unit_test(test_eni_pod_estimate_by_size),
        cmocka_unit_test(test_kubelet_overrides),
        cmocka_unit_test(test_rejects_bad_input_and_leaves_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
