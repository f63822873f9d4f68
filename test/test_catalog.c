#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>

#include "catalog.h"

/* Expected values are the rows of data/ec2/instances.csv and prices_ondemand.csv. */
static void test_finds_instance_specs(void **state)
{
    (void)state;
    const struct tl_instance_type *t = tl_catalog_find("m5.xlarge");
    assert_non_null(t);
    assert_string_equal(t->family, "m5");
    assert_int_equal(t->vcpu, 4);
    assert_float_equal(t->memory_gib, 16, 1e-9);
    assert_int_equal(t->arch, TL_ARCH_AMD64);
    assert_float_equal(t->ondemand_us_east_1, 0.192, 1e-9);
    t = tl_catalog_find("m6g.large");
    assert_non_null(t);
    assert_int_equal(t->arch, TL_ARCH_ARM64);
    assert_null(tl_catalog_find("m5.huge"));
    assert_null(tl_catalog_find(""));
}

static void test_prices_by_region(void **state)
{
    (void)state;
    double price = 0;
    assert_int_equal(tl_catalog_ondemand_price("us-east-1", "m5.xlarge", &price), TL_OK);
    assert_float_equal(price, 0.192, 1e-9);
    assert_int_equal(tl_catalog_ondemand_price("af-south-1", "c5.large", &price), TL_OK);
    assert_float_equal(price, 0.114, 1e-9);
    price = -1;
    assert_int_equal(tl_catalog_ondemand_price("mars-north-1", "m5.xlarge", &price), TL_ENOTFOUND);
    assert_int_equal(tl_catalog_ondemand_price("us-east-1", "nope.large", &price), TL_ENOTFOUND);
    assert_true(price == -1);
    assert_true(tl_catalog_region_known("eu-west-1"));
    assert_false(tl_catalog_region_known("us-east-1-atl-1")); /* Local Zones are left out */
    assert_int_equal(tl_catalog_spot_savings("af-south-1", "c5.large", &price), TL_OK);
    assert_float_equal(price, 71, 1e-9);
}

static void test_region_rates_split_node_prices_sensibly(void **state)
{
    (void)state;
    struct tl_cost_rates rates;
    assert_int_equal(tl_cost_rates_for_region("us-east-1", &rates), TL_OK);
    /* A vCPU costs several times a GiB, both within the range public price splits show. */
    assert_true(rates.cpu_core_hour > 0.015 && rates.cpu_core_hour < 0.06);
    assert_true(rates.memory_gib_hour > 0.002 && rates.memory_gib_hour < 0.01);
    assert_true(rates.cpu_core_hour / rates.memory_gib_hour > 3);
    /* The fit reproduces the general-purpose prices it came from within a few percent. */
    const char *const shapes[] = {"c7i.2xlarge", "m7i.2xlarge", "r7i.2xlarge"};
    for (size_t i = 0; i < 3; i++) {
        const struct tl_instance_type *t = tl_catalog_find(shapes[i]);
        double price;
        assert_int_equal(tl_catalog_ondemand_price("us-east-1", shapes[i], &price), TL_OK);
        double fitted = rates.cpu_core_hour * t->vcpu + rates.memory_gib_hour * t->memory_gib;
        assert_true(fabs(fitted - price) / price < 0.08);
    }
    assert_int_equal(tl_cost_rates_for_region("nowhere-1", &rates), TL_ENOTFOUND);
}

static void test_single_shape_fit_keeps_the_regional_ratio_at_its_price(void **state)
{
    (void)state;
    const char *const types[] = {"m5.xlarge", "m5.2xlarge", "m5.4xlarge"};
    struct tl_cost_rates fit;
    struct tl_cost_rates region;
    assert_int_equal(tl_cost_rates_fit("us-east-1", types, 3, &fit), TL_OK);
    assert_int_equal(tl_cost_rates_for_region("us-east-1", &region), TL_OK);
    assert_float_equal(fit.cpu_core_hour / fit.memory_gib_hour,
                       region.cpu_core_hour / region.memory_gib_hour, 1e-9);
    /* m5 is priced linearly, 0.048 per 1 vCPU + 4 GiB: the split must give that back. */
    assert_float_equal(fit.cpu_core_hour + 4 * fit.memory_gib_hour, 0.048, 1e-9);
    const char *const unknown[] = {"zz.large"};
    assert_int_equal(tl_cost_rates_fit("us-east-1", unknown, 1, &fit), TL_ENOTFOUND);
}

static void test_monthly_cost_arithmetic(void **state)
{
    (void)state;
    struct tl_cost_rates rates = {.cpu_core_hour = 0.04, .memory_gib_hour = 0.005};
    /* (0.04 * 2 + 0.005 * 8) * 730 = 87.6 */
    assert_float_equal(tl_cost_monthly(&rates, 2, 8), 87.6, 1e-9);
    assert_float_equal(tl_cost_monthly(&rates, 0, 0), 0, 1e-12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finds_instance_specs),
        cmocka_unit_test(test_prices_by_region),
        cmocka_unit_test(test_region_rates_split_node_prices_sensibly),
        cmocka_unit_test(test_single_shape_fit_keeps_the_regional_ratio_at_its_price),
        cmocka_unit_test(test_monthly_cost_arithmetic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
