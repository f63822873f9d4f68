/* The informers' projected cache (kube_store): indexes, ownership and the re-list diff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube_store.h"

/* A projection as a controller would make one: a couple of fields, here a label and a number. */
struct proj {
    char tag[16];
    int freed_check;
};

static int live_projections;

static struct proj *make(const char *tag)
{
    struct proj *p = calloc(1, sizeof(*p));
    snprintf(p->tag, sizeof(p->tag), "%s", tag);
    live_projections++;
    return p;
}

static void free_proj(void *arg, void *proj)
{
    int *freed = arg;
    if (freed)
        (*freed)++;
    live_projections--;
    free(proj);
}

static struct tl_kube_store_meta meta(const char *ns, const char *name, const char *uid,
                                      const char *rv)
{
    struct tl_kube_store_meta m = {
        .namespace = ns, .name = name, .uid = uid, .resource_version = rv};
    return m;
}

static void put(struct tl_kube_store *s, const char *ns, const char *name, const char *uid,
                const char *rv, const char *tag)
{
    struct tl_kube_store_meta m = meta(ns, name, uid, rv);
    assert_int_equal(tl_kube_store_upsert(s, &m, make(tag), NULL, NULL), TL_OK);
}

static const char *tag_of(const struct tl_kube_store *s, const char *ns, const char *name)
{
    const struct tl_kube_store_item *it = tl_kube_store_get(s, ns, name);
    return it ? ((struct proj *)it->proj)->tag : NULL;
}

static void test_upsert_get_remove(void **state)
{
    int freed = 0;
    struct tl_kube_store *s = tl_kube_store_create(free_proj, &freed);
    put(s, "shop", "web", "u1", "1", "web-v1");
    put(s, "", "node-a", "u2", "2", "node");
    assert_int_equal(tl_kube_store_size(s), 2);
    assert_string_equal(tag_of(s, "shop", "web"), "web-v1");
    assert_string_equal(tag_of(s, NULL, "node-a"), "node");
    assert_null(tag_of(s, "other", "web"));

    /* Replacing hands the old item back, still readable, until the caller frees it. */
    struct tl_kube_store_meta m = meta("shop", "web", "u1", "2");
    struct tl_kube_store_item *old = NULL;
    const struct tl_kube_store_item *now = NULL;
    assert_int_equal(tl_kube_store_upsert(s, &m, make("web-v2"), &old, &now), TL_OK);
    assert_non_null(old);
    assert_string_equal(((struct proj *)old->proj)->tag, "web-v1");
    assert_string_equal(old->resource_version, "1");
    assert_string_equal(now->resource_version, "2");
    assert_int_equal(freed, 0);
    tl_kube_store_item_free(s, old);
    assert_int_equal(freed, 1);
    assert_int_equal(tl_kube_store_size(s), 2);
    assert_string_equal(tag_of(s, "shop", "web"), "web-v2");

    struct tl_kube_store_item *gone = tl_kube_store_remove(s, "shop", "web");
    assert_non_null(gone);
    assert_string_equal(gone->name, "web");
    assert_string_equal(gone->namespace, "shop");
    assert_null(tl_kube_store_get(s, "shop", "web"));
    assert_null(tl_kube_store_remove(s, "shop", "web"));
    tl_kube_store_item_free(s, gone);
    assert_int_equal(tl_kube_store_size(s), 1);
    tl_kube_store_destroy(s);
    assert_int_equal(freed, 3);
    assert_int_equal(live_projections, 0);
}

static void test_upsert_without_name_frees_projection(void **state)
{
    int freed = 0;
    struct tl_kube_store *s = tl_kube_store_create(free_proj, &freed);
    struct tl_kube_store_meta m = meta("shop", "", "u", "1");
    assert_int_equal(tl_kube_store_upsert(s, &m, make("x"), NULL, NULL), TL_EINVAL);
    assert_int_equal(freed, 1);
    assert_int_equal(tl_kube_store_size(s), 0);
    tl_kube_store_destroy(s);
}

struct names {
    char text[512];
    int count;
};

static bool collect(void *arg, const struct tl_kube_store_item *item)
{
    struct names *n = arg;
    size_t len = strlen(n->text);
    snprintf(n->text + len, sizeof(n->text) - len, "%s/%s ", item->namespace, item->name);
    n->count++;
    return true;
}

static bool stop_after_one(void *arg, const struct tl_kube_store_item *item)
{
    (*(int *)arg)++;
    return false;
}

static void test_namespace_and_owner_indexes(void **state)
{
    struct tl_kube_store *s = tl_kube_store_create(free_proj, NULL);
    struct tl_kube_store_meta m = meta("shop", "web-1", "p1", "1");
    m.owner_uids[0] = "rs-web";
    m.nowners = 1;
    assert_int_equal(tl_kube_store_upsert(s, &m, make("a"), NULL, NULL), TL_OK);
    m = meta("shop", "web-2", "p2", "1");
    m.owner_uids[0] = "rs-web";
    m.owner_uids[1] = "other-owner";
    m.nowners = 2;
    assert_int_equal(tl_kube_store_upsert(s, &m, make("b"), NULL, NULL), TL_OK);
    put(s, "shop", "db-0", "p3", "1", "c");
    put(s, "blog", "web-1", "p4", "1", "d");

    struct names n = {0};
    tl_kube_store_foreach_namespace(s, "shop", collect, &n);
    assert_int_equal(n.count, 3);
    assert_non_null(strstr(n.text, "shop/db-0"));
    assert_null(strstr(n.text, "blog/"));

    memset(&n, 0, sizeof(n));
    tl_kube_store_foreach_owner(s, "rs-web", collect, &n);
    assert_int_equal(n.count, 2);
    assert_non_null(strstr(n.text, "shop/web-1"));
    assert_non_null(strstr(n.text, "shop/web-2"));

    memset(&n, 0, sizeof(n));
    tl_kube_store_foreach(s, collect, &n);
    assert_string_equal(n.text, "shop/web-1 shop/web-2 shop/db-0 blog/web-1 ");

    int visits = 0;
    assert_false(tl_kube_store_foreach(s, stop_after_one, &visits));
    assert_int_equal(visits, 1);

    /* An update that drops the owner reference leaves the owner index. */
    put(s, "shop", "web-1", "p1", "2", "a2");
    memset(&n, 0, sizeof(n));
    tl_kube_store_foreach_owner(s, "rs-web", collect, &n);
    assert_string_equal(n.text, "shop/web-2 ");

    tl_kube_store_item_free(s, tl_kube_store_remove(s, "shop", "web-2"));
    memset(&n, 0, sizeof(n));
    tl_kube_store_foreach_owner(s, "rs-web", collect, &n);
    tl_kube_store_foreach_owner(s, "other-owner", collect, &n);
    tl_kube_store_foreach_namespace(s, "nowhere", collect, &n);
    assert_int_equal(n.count, 0);
    tl_kube_store_destroy(s);
    assert_int_equal(live_projections, 0);
}

static void test_meta_from_json(void **state)
{
    cJSON *pod = cJSON_Parse(
        "{\"metadata\":{\"name\":\"web-1\",\"namespace\":\"shop\",\"uid\":\"abc\","
        "\"resourceVersion\":\"42\",\"ownerReferences\":[{\"uid\":\"rs1\",\"kind\":\"ReplicaSet\"},"
        "{\"kind\":\"NoUid\"},{\"uid\":\"x2\"}]}}");
    struct tl_kube_store_meta m;
    assert_int_equal(tl_kube_store_meta_from_json(pod, &m), TL_OK);
    assert_string_equal(m.name, "web-1");
    assert_string_equal(m.namespace, "shop");
    assert_string_equal(m.uid, "abc");
    assert_string_equal(m.resource_version, "42");
    assert_int_equal(m.nowners, 2);
    assert_string_equal(m.owner_uids[0], "rs1");
    assert_string_equal(m.owner_uids[1], "x2");
    cJSON_Delete(pod);

    cJSON *node = cJSON_Parse("{\"metadata\":{\"name\":\"n1\"}}");
    assert_int_equal(tl_kube_store_meta_from_json(node, &m), TL_OK);
    assert_null(m.namespace);
    assert_int_equal(m.nowners, 0);
    cJSON_Delete(node);

    cJSON *bad = cJSON_Parse("{\"metadata\":{\"namespace\":\"x\"}}");
    assert_int_equal(tl_kube_store_meta_from_json(bad, &m), TL_EINVAL);
    cJSON_Delete(bad);
}

struct event_log {
    char text[1024];
    struct tl_kube_store *store;
};

static void log_event(struct event_log *log, const char *what, const char *name, const char *rv)
{
    size_t len = strlen(log->text);
    snprintf(log->text + len, sizeof(log->text) - len, "%s %s@%s;", what, name, rv);
}

static void ev_add(void *arg, const struct tl_kube_store_item *item)
{
    log_event(arg, "add", item->name, item->resource_version);
}

static void ev_update(void *arg, const struct tl_kube_store_item *old,
                      const struct tl_kube_store_item *item)
{
    struct event_log *log = arg;
    char rvs[64];
    snprintf(rvs, sizeof(rvs), "%s->%s", old->resource_version, item->resource_version);
    log_event(log, "update", item->name, rvs);
}

static void ev_delete(void *arg, const struct tl_kube_store_item *old)
{
    log_event(arg, "delete", old->name, old->resource_version);
}

static void test_replace_reports_the_difference(void **state)
{
    int freed = 0;
    struct tl_kube_store *s = tl_kube_store_create(free_proj, &freed);
    put(s, "ns", "same", "u-same", "1", "same-old");
    put(s, "ns", "changed", "u-changed", "1", "changed-old");
    put(s, "ns", "recreated", "u-old", "1", "recreated-old");
    put(s, "ns", "deleted", "u-del", "1", "deleted-old");

    struct tl_kube_store *fresh = tl_kube_store_create(free_proj, &freed);
    put(fresh, "ns", "same", "u-same", "1", "same-new");
    put(fresh, "ns", "changed", "u-changed", "5", "changed-new");
    put(fresh, "ns", "recreated", "u-new", "6", "recreated-new");
    put(fresh, "ns", "added", "u-add", "7", "added-new");

    struct event_log log = {.store = s};
    struct tl_kube_store_events events = {ev_add, ev_update, ev_delete, &log};
    tl_kube_store_replace(s, fresh, &events);
    assert_string_equal(log.text, "update changed@1->5;delete recreated@1;add recreated@6;"
                                  "add added@7;delete deleted@1;");
    assert_int_equal(tl_kube_store_size(fresh), 0);
    assert_int_equal(tl_kube_store_size(s), 4);
    /* The unchanged object keeps its old projection; the others take the fresh ones. */
    assert_string_equal(tag_of(s, "ns", "same"), "same-old");
    assert_string_equal(tag_of(s, "ns", "changed"), "changed-new");
    assert_string_equal(tag_of(s, "ns", "recreated"), "recreated-new");
    assert_string_equal(tag_of(s, "ns", "added"), "added-new");
    assert_null(tl_kube_store_get(s, "ns", "deleted"));
    assert_int_equal(freed, 4); /* same-new, changed-old, recreated-old, deleted-old */

    /* The same list again reports nothing. */
    fresh = (tl_kube_store_destroy(fresh), tl_kube_store_create(free_proj, &freed));
    put(fresh, "ns", "same", "u-same", "1", "x");
    put(fresh, "ns", "changed", "u-changed", "5", "x");
    put(fresh, "ns", "recreated", "u-new", "6", "x");
    put(fresh, "ns", "added", "u-add", "7", "x");
    log.text[0] = '\0';
    tl_kube_store_replace(s, fresh, &events);
    assert_string_equal(log.text, "");

    /* An empty list deletes everything. */
    log.text[0] = '\0';
    tl_kube_store_replace(s, fresh, &events);
    assert_int_equal(tl_kube_store_size(s), 0);
    assert_int_equal(strlen(log.text) > 0, 1);
    assert_non_null(strstr(log.text, "delete same@1;"));
    assert_non_null(strstr(log.text, "delete added@7;"));
    tl_kube_store_destroy(fresh);
    tl_kube_store_destroy(s);
    assert_int_equal(live_projections, 0);
}

static void test_replace_into_empty_store_adds_all(void **state)
{
    struct tl_kube_store *s = tl_kube_store_create(free_proj, NULL);
    struct tl_kube_store *fresh = tl_kube_store_create(free_proj, NULL);
    put(fresh, "a", "x", "1", "1", "t");
    put(fresh, "b", "y", "2", "1", "t");
    struct event_log log = {.store = s};
    struct tl_kube_store_events events = {ev_add, ev_update, ev_delete, &log};
    tl_kube_store_replace(s, fresh, &events);
    assert_string_equal(log.text, "add x@1;add y@1;");
    struct names n = {0};
    tl_kube_store_foreach_namespace(s, "b", collect, &n);
    assert_string_equal(n.text, "b/y ");
    tl_kube_store_destroy(fresh);
    tl_kube_store_destroy(s);
}

static void test_many_objects(void **state)
{
    struct tl_kube_store *s = tl_kube_store_create(free_proj, NULL);
    char name[32], ns[16], owner[16];
    for (int i = 0; i < 20000; i++) {
        snprintf(name, sizeof(name), "pod-%d", i);
        snprintf(ns, sizeof(ns), "ns-%d", i % 50);
        snprintf(owner, sizeof(owner), "rs-%d", i / 10);
        struct tl_kube_store_meta m = meta(ns, name, name, "1");
        m.owner_uids[0] = owner;
        m.nowners = 1;
        assert_int_equal(tl_kube_store_upsert(s, &m, make("p"), NULL, NULL), TL_OK);
    }
    assert_int_equal(tl_kube_store_size(s), 20000);
    struct names n = {0};
    tl_kube_store_foreach_owner(s, "rs-7", collect, &n);
    assert_int_equal(n.count, 10);
    assert_non_null(tl_kube_store_get(s, "ns-3", "pod-12353"));
    assert_null(tl_kube_store_get(s, "ns-4", "pod-12353"));
    assert_true(tl_kube_store_overhead(s) > (size_t)20000 * 100);
    for (int i = 0; i < 20000; i += 2) {
        snprintf(name, sizeof(name), "pod-%d", i);
        snprintf(ns, sizeof(ns), "ns-%d", i % 50);
        tl_kube_store_item_free(s, tl_kube_store_remove(s, ns, name));
    }
    assert_int_equal(tl_kube_store_size(s), 10000);
    memset(&n, 0, sizeof(n));
    tl_kube_store_foreach_owner(s, "rs-7", collect, &n);
    assert_int_equal(n.count, 5);
    tl_kube_store_destroy(s);
    assert_int_equal(live_projections, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upsert_get_remove),
        cmocka_unit_test(test_upsert_without_name_frees_projection),
        cmocka_unit_test(test_namespace_and_owner_indexes),
        cmocka_unit_test(test_meta_from_json),
        cmocka_unit_test(test_replace_reports_the_difference),
        cmocka_unit_test(test_replace_into_empty_store_adds_all),
        cmocka_unit_test(test_many_objects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
