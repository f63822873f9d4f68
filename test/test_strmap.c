#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

static int freed;

static void count_free(void *value)
{
    freed++;
    free(value);
}

static bool count_visit(void *arg, const char *key, void *value)
{
    (void)key;
    (void)value;
    (*(size_t *)arg)++;
    return true;
}

static void test_set_get_replace_remove(void **state)
{
    (void)state;
    freed = 0;
    struct tl_strmap *map = tl_strmap_create(count_free);
    assert_non_null(map);
    assert_int_equal(tl_strmap_set(map, "shop/Deployment/web", strdup("a")), TL_OK);
    assert_string_equal(tl_strmap_get(map, "shop/Deployment/web"), "a");
    assert_null(tl_strmap_get(map, "shop/Deployment/we"));
    assert_int_equal(tl_strmap_set(map, "shop/Deployment/web", strdup("b")), TL_OK);
    assert_int_equal(freed, 1); /* the replaced value */
    assert_string_equal(tl_strmap_get(map, "shop/Deployment/web"), "b");
    assert_int_equal(tl_strmap_size(map), 1);
    assert_true(tl_strmap_remove(map, "shop/Deployment/web"));
    assert_false(tl_strmap_remove(map, "shop/Deployment/web"));
    assert_int_equal(freed, 2);
    assert_int_equal(tl_strmap_size(map), 0);
    tl_strmap_destroy(map);
}

static void test_many_keys_survive_growth_and_removals(void **state)
{
    (void)state;
    freed = 0;
    struct tl_strmap *map = tl_strmap_create(count_free);
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(tl_strmap_set(map, key, strdup(key)), TL_OK);
    }
    /* Removing every third key must not hide any of the others behind a hole. */
    for (int i = 0; i < 5000; i += 3) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_true(tl_strmap_remove(map, key));
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        const char *v = tl_strmap_get(map, key);
        if (i % 3 == 0)
            assert_null(v);
        else
            assert_string_equal(v, key);
    }
    size_t visited = 0;
    tl_strmap_foreach(map, count_visit, &visited);
    assert_int_equal(visited, tl_strmap_size(map));
    assert_int_equal(visited, 5000 - 1667);
    tl_strmap_destroy(map);
    assert_int_equal(freed, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_get_replace_remove),
        cmocka_unit_test(test_many_keys_survive_growth_and_removals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
