#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nodepool_plan.h"

#define MIB       INT64_C(1048576)
#define GIB       (1024 * MIB)
#define MAX_PODS  1200
#define MAX_NODES 32

/* One planning scenario: a NodePool, pods and nodes, owned by the fixture. */
struct scenario {
    struct tl_nodepool_spec spec;
    struct tl_plan_pod pods[MAX_PODS];
    size_t npods;
    struct tl_plan_node nodes[MAX_NODES];
    size_t nnodes;
    struct tl_plan_input input;
    struct tl_plan_result result;
    bool computed;
};

static int setup(void **state)
{
    struct scenario *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -1;
    tl_nodepool_plan_input_defaults(&s->input);
    s->input.region = "us-east-1";
    s->input.nodepool = &s->spec;
    s->input.pods = s->pods;
    s->input.nodes = s->nodes;
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    struct scenario *s = *state;
    tl_nodepool_spec_free(&s->spec);
    if (s->computed)
        tl_nodepool_plan_result_free(&s->result);
    free(s);
    return 0;
}

/* A NodePool whose spec is `spec_body` (the inside of "spec": {...}). */
static void nodepool(struct scenario *s, const char *spec_body)
{
    char json[2048];
    int n =
        snprintf(json, sizeof(json), "{\"metadata\":{\"name\":\"test\"},\"spec\":{%s}}", spec_body);
    assert_true(n > 0 && (size_t)n < sizeof(json));
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    char err[256] = "";
    if (tl_nodepool_spec_parse(root, &s->spec, err, sizeof(err)) != TL_OK)
        fail_msg("NodePool: %s", err);
    cJSON_Delete(root);
}

#define REQS(list) "\"template\":{\"spec\":{\"requirements\":[" list "]}}"
#define ON_DEMAND                                                                                  \
    "{\"key\":\"karpenter.sh/capacity-type\",\"operator\":\"In\",\"values\":[\"on-demand\"]}"
#define ONLY(types)                                                                                \
    "{\"key\":\"node.kubernetes.io/instance-type\",\"operator\":\"In\",\"values\":[" types "]}"

static void pods(struct scenario *s, size_t count, const char *name, int64_t cpu, int64_t mem,
                 int64_t rec_cpu, int64_t rec_mem)
{
    for (size_t i = 0; i < count; i++) {
        assert_true(s->npods < MAX_PODS);
        s->pods[s->npods++] = (struct tl_plan_pod){name, cpu, mem, rec_cpu, rec_mem, false};
    }
}

static void daemonset(struct scenario *s, const char *name, int64_t cpu, int64_t mem)
{
    s->pods[s->npods++] = (struct tl_plan_pod){name, cpu, mem, 0, 0, true};
}

static void nodes(struct scenario *s, size_t count, const char *type,
                  enum tl_capacity_type capacity)
{
    for (size_t i = 0; i < count; i++) {
        assert_true(s->nnodes < MAX_NODES);
        s->nodes[s->nnodes++] = (struct tl_plan_node){type, capacity};
    }
}

static const struct tl_plan_result *plan(struct scenario *s)
{
    s->input.npods = s->npods;
    s->input.nnodes = s->nnodes;
    assert_int_equal(tl_nodepool_plan_compute(&s->input, &s->result), TL_OK);
    s->computed = true;
    return &s->result;
}

static uint32_t count_of(const struct tl_plan_fleet *f, const char *type)
{
    for (size_t i = 0; i < f->nlines; i++) {
        if (strcmp(f->lines[i].type, type) == 0)
            return f->lines[i].count;
    }
    return 0;
}

static const struct tl_plan_change *change_of(const struct tl_plan_result *r,
                                              enum tl_plan_change_kind kind)
{
    for (size_t i = 0; i < r->nchanges; i++) {
        if (r->changes[i].kind == kind)
            return &r->changes[i];
    }
    return NULL;
}

/* The change of this kind, failing the test when there is none. */
static const struct tl_plan_change *need_change(const struct tl_plan_result *r,
                                                enum tl_plan_change_kind kind)
{
    const struct tl_plan_change *c = change_of(r, kind);
    if (c == NULL) {
        fail_msg("no change of kind %d; reason: %s", (int)kind, r->reason);
        abort(); /* not reached: tells the static analyser that c is not NULL below */
    }
    return c;
}

/* m5.xlarge in us-east-1: $0.192/h on-demand, 730 h a month: $140.16. */
#define M5_XLARGE_MONTH (0.192 * 730)

/*
 * m5.xlarge offers 3920m and 14162Mi (see test_allocatable). Pods of 1 CPU and 2Gi: three fit
 * by CPU (3000m; a fourth needs 4000m), memory would take seven. Ten pods: 3 + 3 + 3 + 1 on four
 * nodes. Recommended 500m/1Gi: seven fit (3500m), 7 + 3 on two nodes.
 */
static void test_packs_to_the_hand_computed_node_count(void **state)
{
    struct scenario *s = *state;
    nodepool(s, REQS(ONLY("\"m5.xlarge\"") "," ON_DEMAND));
    pods(s, 10, "shop/web", 1000, 2 * GIB, 500, 1 * GIB);
    nodes(s, 4, "m5.xlarge", TL_CAPACITY_ON_DEMAND);
    const struct tl_plan_result *r = plan(s);
    assert_int_equal(r->after_current.nodes, 4);
    assert_int_equal(count_of(&r->after_current, "m5.xlarge"), 4);
    assert_int_equal(r->after_recommended.nodes, 2);
    assert_int_equal(r->after_recommended.requested_cpu_milli, 10 * 500);
    assert_int_equal(r->after_recommended.requested_memory_bytes, 10 * GIB);
    assert_int_equal(r->planned_capacity, TL_CAPACITY_ON_DEMAND);
    /* Two of four identical nodes go: Karpenter's consolidation does that unaided. */
    assert_int_equal(r->verdict, TL_PLAN_NO_CHANGE_NEEDED);
    assert_float_equal(r->monthly_before_usd, 4 * M5_XLARGE_MONTH, 1e-6);
    assert_float_equal(r->monthly_after_usd, 2 * M5_XLARGE_MONTH, 1e-6);
    assert_float_equal(r->monthly_savings_usd, 2 * M5_XLARGE_MONTH, 1e-6);
    assert_non_null(strstr(r->reason, "no NodePool change needed"));
}

/*
 * A DaemonSet of 1 CPU and 1Gi runs on every node: 3920m - 1000m leaves 2920m, two 1-CPU pods
 * a node, so ten pods need five nodes instead of four.
 */
static void test_daemonset_overhead_reduces_room_per_node(void **state)
{
    struct scenario *s = *state;
    nodepool(s, REQS(ONLY("\"m5.xlarge\"") "," ON_DEMAND));
    pods(s, 10, "shop/web", 1000, 2 * GIB, 0, 0);
    daemonset(s, "monitoring/agent", 1000, 1 * GIB);
    const struct tl_plan_result *r = plan(s);
    assert_int_equal(r->after_current.nodes, 5);
    /* No recommendation given: the recommended plan is the current one. */
    assert_int_equal(r->after_recommended.nodes, 5);
    /* Requested: 10 pods plus the DaemonSet on each of 5 nodes. */
    assert_int_equal(r->after_current.requested_cpu_milli, 10 * 1000 + 5 * 1000);
}

/* Max pods: m5.xlarge takes 58 pods. 116 tiny pods fill two nodes; one DaemonSet pod on every
 * node leaves 57 slots, so the 115th and 116th pods need a third node. */
static void test_max_pods_per_node(void **state)
{
    struct scenario *s = *state;
    nodepool(s, REQS(ONLY("\"m5.xlarge\"") "," ON_DEMAND));
    pods(s, 116, "shop/tiny", 10, 16 * MIB, 0, 0);
    const struct tl_plan_result *r = plan(s);
    assert_int_equal(r->after_current.nodes, 2);
    tl_nodepool_plan_result_free(&s->result);
    s->computed = false;
    daemonset(s, "kube-system/kube-proxy", 10, 16 * MIB);
    r = plan(s);
    assert_int_equal(r->after_current.nodes, 3);
}

/*
 * Prices: m5.2xlarge $0.384/h on-demand; m5.xlarge spot saves 66% in us-east-1 (Spot Instance
 * Advisor), so $0.192 * 0.34 = $0.06528/h; m5.2xlarge spot saves 54%: $0.17664/h.
 *   before = 3 * 0.384 * 730 + 0.06528 * 730 = 840.96 + 47.6544 = 888.6144
 *   all on-demand = 840.96 + 140.16 = 981.12; all spot = 3 * 128.9472 + 47.6544 = 434.496
 */
static void test_prices_current_nodes_by_capacity_type(void **state)
{
    struct scenario *s = *state;
    nodepool(s, REQS(ONLY("\"m5.xlarge\",\"m5.2xlarge\"")));
    pods(s, 4, "shop/web", 1000, 2 * GIB, 0, 0);
    nodes(s, 3, "m5.2xlarge", TL_CAPACITY_ON_DEMAND);
    nodes(s, 1, "m5.xlarge", TL_CAPACITY_SPOT);
    nodes(s, 1, "x9.unknown", TL_CAPACITY_ON_DEMAND);
    const struct tl_plan_result *r = plan(s);
    assert_int_equal(r->before.nodes, 5);
    assert_int_equal(r->before.unpriced_nodes, 1);
    assert_float_equal(r->before.monthly_usd, 888.6144, 1e-6);
    assert_float_equal(r->before.monthly_ondemand_usd, 981.12, 1e-6);
    assert_float_equal(r->before.monthly_spot_usd, 434.496, 1e-6);
    assert_non_null(
        strstr(r->reason, "(1 current node without a price in the region count as $0)"));
    assert_int_equal(r->before.lines[0].count, 3); /* most numerous first */
    assert_string_equal(r->before.lines[0].type, "m5.2xlarge");
    /* The pool allows spot (no capacity-type requirement): Karpenter prefers it, so the plan is
     * priced at spot and its nodes are spot. */
    assert_int_equal(r->planned_capacity, TL_CAPACITY_SPOT);
    assert_int_equal(r->after_current.lines[0].capacity, TL_CAPACITY_SPOT);
    assert_float_equal(r->after_current.monthly_usd, r->after_current.monthly_spot_usd, 1e-9);
}

static void test_spot_price_and_fallbacks(void **state)
{
    (void)state;
    double od = 0;
    double spot = 0;
    assert_int_equal(tl_nodepool_plan_price("us-east-1", "m5.xlarge", TL_CAPACITY_SPOT, &spot),
                     TL_OK);
    assert_float_equal(spot, 0.192 * (1 - 0.66), 1e-12);
    /* t2.nano has no advisor row: its family's average saving, (73+69+64+64+68+72)/6. */
    assert_int_equal(tl_catalog_ondemand_price("us-east-1", "t2.nano", &od), TL_OK);
    assert_int_equal(tl_nodepool_plan_price("us-east-1", "t2.nano", TL_CAPACITY_SPOT, &spot),
                     TL_OK);
    assert_float_equal(spot, od * (1 - 410.0 / 6 / 100), 1e-12);
    /* c8a has no row at all: the region's average over its 894 rows, about 64.76%. */
    assert_int_equal(tl_catalog_ondemand_price("us-east-1", "c8a.large", &od), TL_OK);
    assert_int_equal(tl_nodepool_plan_price("us-east-1", "c8a.large", TL_CAPACITY_SPOT, &spot),
                     TL_OK);
    assert_true(spot > od * (1 - 0.6480) && spot < od * (1 - 0.6470));
    assert_int_equal(tl_nodepool_plan_price("us-east-1", "m5.xlarge", TL_CAPACITY_ON_DEMAND, &od),
                     TL_OK);
    assert_float_equal(od, 0.192, 1e-12);
    assert_int_equal(tl_nodepool_plan_price("us-east-1", "nope.large", TL_CAPACITY_SPOT, &spot),
                     TL_ENOTFOUND);
}

/*
 * Ten 1-CPU pods need four m5.xlarge (16 vCPU) but limits.cpu is 8: the plan is infeasible under
 * the limits, and the advice raises them to the plan (16) plus one node (4): 20 CPU.
 */
static void test_limits_make_the_plan_infeasible(void **state)
{
    struct scenario *s = *state;
    nodepool(s, REQS(ONLY("\"m5.xlarge\"") "," ON_DEMAND) ",\"limits\":{\"cpu\":\"8\"}");
    pods(s, 10, "shop/web", 1000, 2 * GIB, 0, 0);
    nodes(s, 5, "m5.xlarge", TL_CAPACITY_ON_DEMAND);
    const struct tl_plan_result *r = plan(s);
    assert_false(r->after_recommended.within_limits);
    assert_int_equal(r->after_recommended.capacity_cpu_milli, 16000);
    const struct tl_plan_change *c = need_change(r, TL_PLAN_CHANGE_LIMITS);
    assert_int_equal(c->limit_cpu_milli, 20000);
    assert_true(c->limit_memory_bytes < 0 && c->limit_nodes < 0); /* unset stays unset */
    assert_false(c->drifts);
    assert_string_equal(c->summary, "cpu: 20, memory: unset, nodes: unset");
    assert_int_equal(r->verdict, TL_PLAN_CHANGE);
}

/* The guard: one m5.xlarge runs now ($140.16) but the pods need four ($560.64), 300% more.
 * Nothing is advised, not even the limits change, and the reason says why. */
static void test_guard_refuses_a_plan_that_costs_more(void **state)
{
    struct scenario *s = *state;
    nodepool(s, REQS(ONLY("\"m5.xlarge\"") "," ON_DEMAND) ",\"limits\":{\"cpu\":\"8\"}");
    pods(s, 10, "shop/web", 1000, 2 * GIB, 0, 0);
    nodes(s, 1, "m5.xlarge", TL_CAPACITY_ON_DEMAND);
    const struct tl_plan_result *r = plan(s);
    assert_int_equal(r->verdict, TL_PLAN_NO_ADVICE);
    assert_null(change_of(r, TL_PLAN_CHANGE_LIMITS));
    for (size_t i = 0; i < r->nchanges; i++)
        assert_true(r->changes[i].optional);
    assert_string_equal(r->reason,
                        "no cheaper plan: the plan costs $560.64/month, 300.0% more than the "
                        "$140.16/month of the current nodes, above the 10% guard; the plan's nodes "
                        "(16 CPU, 60620Mi) also exceed spec.limits");
}

/* Within the guard a plan that costs a little more is advised when pods need the room: three
 * nodes run, four are needed (+33%); with the guard at 50% the limits change goes through. */
static void test_guard_threshold_is_a_parameter(void **state)
{
    struct scenario *s = *state;
    nodepool(s, REQS(ONLY("\"m5.xlarge\"") "," ON_DEMAND) ",\"limits\":{\"cpu\":\"12\"}");
    pods(s, 10, "shop/web", 1000, 2 * GIB, 0, 0);
    nodes(s, 3, "m5.xlarge", TL_CAPACITY_ON_DEMAND);
    const struct tl_plan_result *r = plan(s);
    assert_int_equal(r->verdict, TL_PLAN_NO_ADVICE);
    tl_nodepool_plan_result_free(&s->result);
    s->computed = false;
    s->input.max_cost_increase_percent = 50;
    r = plan(s);
    assert_int_equal(r->verdict, TL_PLAN_CHANGE);
    assert_non_null(change_of(r, TL_PLAN_CHANGE_LIMITS));
    assert_non_null(strstr(r->reason, "make room for the pods"));
}

static void test_pod_too_big_for_any_allowed_type(void **state)
{
    struct scenario *s = *state;
    nodepool(s, REQS(ONLY("\"m5.xlarge\",\"m5.2xlarge\"") "," ON_DEMAND));
    pods(s, 3, "shop/web", 500, 1 * GIB, 250, 512 * MIB);
    pods(s, 1, "shop/big", 40000, 8 * GIB, 0, 0);
    nodes(s, 2, "m5.2xlarge", TL_CAPACITY_ON_DEMAND);
    const struct tl_plan_result *r = plan(s);
    assert_int_equal(r->verdict, TL_PLAN_NO_ADVICE);
    assert_int_equal(r->nchanges, 0);
    assert_string_equal(r->reason, "pod shop/big needs 40 CPU, more than any allowed type offers "
                                   "(at most 7.91 on m5.2xlarge after overhead)");
    assert_int_equal(r->before.nodes, 2); /* the current nodes are still priced */
}

static void test_pod_with_too_much_memory(void **state)
{
    struct scenario *s = *state;
    nodepool(s, REQS(ONLY("\"m5.xlarge\"") "," ON_DEMAND));
    pods(s, 1, "shop/cache", 1000, 64 * GIB, 1000, 8 * GIB);
    const struct tl_plan_result *r = plan(s);
    assert_int_equal(r->verdict, TL_PLAN_NO_ADVICE);
    assert_string_equal(r->reason, "pod shop/cache needs 64Gi of memory, more than any allowed "
                                   "type offers (at most 14162Mi on m5.xlarge after overhead)");
}

/*
 * Narrowing: an m-only pool with instance-family minValues 3 runs six m5.2xlarge. The plan for
 * the smaller requests uses cheaper, newer families, so the advice narrows instance-family to
 * the plan's families plus the cheapest others up to three, which drifts the six m5 nodes, and
 * moves WhenEmpty to WhenEmptyOrUnderutilized, which drifts nothing.
 */
static void test_narrowing_honours_min_values_and_reports_drift(void **state)
{
    struct scenario *s = *state;
    nodepool(s, REQS("{\"key\":\"karpenter.k8s.aws/instance-category\",\"operator\":\"In\","
                     "\"values\":[\"m\"]},"
                     "{\"key\":\"karpenter.k8s.aws/instance-family\",\"operator\":\"Exists\","
                     "\"minValues\":3}," ON_DEMAND) ",\"disruption\":{\"consolidationPolicy\":"
                                                    "\"WhenEmpty\"}");
    pods(s, 40, "shop/web", 1000, 4 * GIB, 400, 1536 * MIB);
    nodes(s, 6, "m5.2xlarge", TL_CAPACITY_ON_DEMAND);
    const struct tl_plan_result *r = plan(s);
    assert_int_equal(r->verdict, TL_PLAN_CHANGE);
    assert_true(r->monthly_after_usd < r->monthly_before_usd);

    const struct tl_plan_change *narrow = need_change(r, TL_PLAN_CHANGE_REQUIREMENTS);
    assert_false(narrow->optional);
    assert_true(narrow->drifts);
    assert_int_equal(narrow->drifted_nodes, 6);
    assert_non_null(strstr(narrow->summary, "karpenter.k8s.aws/instance-family In ["));
    assert_null(strstr(narrow->summary, "m5,"));
    assert_null(strstr(narrow->summary, "m5]"));
    /* minValues still holds, every planned type is still allowed, m5 is not. */
    assert_true(tl_nodepool_reqs_min_values_met(&narrow->requirements, NULL, 0));
    for (size_t i = 0; i < r->after_recommended.nlines; i++)
        assert_true(tl_nodepool_reqs_allow(&narrow->requirements,
                                           tl_catalog_find(r->after_recommended.lines[i].type)));
    assert_false(tl_nodepool_reqs_allow(&narrow->requirements, tl_catalog_find("m5.2xlarge")));
    const struct tl_nodepool_req *family =
        &narrow->requirements.items[narrow->requirements.count - 1];
    assert_string_equal(family->key, TL_LABEL_INSTANCE_FAMILY);
    assert_int_equal(family->nvalues, 3);
    /* The pool allows arm64 and the plan uses it where m5 (amd64) runs now: said plainly. */
    assert_non_null(strstr(narrow->note, "arm64"));

    const struct tl_plan_change *consolidation = need_change(r, TL_PLAN_CHANGE_CONSOLIDATION);
    assert_false(consolidation->drifts);
    assert_int_equal(consolidation->consolidation, TL_CONSOLIDATE_WHEN_EMPTY_OR_UNDERUTILIZED);

    /* On-demand only: spot is offered as an option, with its caveat, and drifts nothing. */
    const struct tl_plan_change *spot = need_change(r, TL_PLAN_CHANGE_SPOT);
    assert_true(spot->optional);
    assert_false(spot->drifts);
    assert_true(spot->monthly_usd < r->monthly_after_usd);
    assert_non_null(strstr(spot->note, "two minutes"));
    assert_int_equal(tl_nodepool_reqs_capacity(&spot->requirements),
                     TL_CAPACITY_ON_DEMAND | TL_CAPACITY_SPOT);
}

/* The coarsest key that rules out the off-plan nodes wins: r5 nodes in a pool whose plan is
 * all c or m types go with a category narrowing, no family list needed. */
static void test_narrowing_prefers_the_coarsest_key(void **state)
{
    struct scenario *s = *state;
    nodepool(s, REQS("{\"key\":\"karpenter.k8s.aws/instance-category\",\"operator\":\"In\","
                     "\"values\":[\"c\",\"m\",\"r\"]}," ON_DEMAND));
    pods(s, 30, "shop/api", 2000, 2 * GIB, 1000, 1 * GIB);
    nodes(s, 8, "r5.2xlarge", TL_CAPACITY_ON_DEMAND);
    const struct tl_plan_result *r = plan(s);
    assert_int_equal(r->verdict, TL_PLAN_CHANGE);
    const struct tl_plan_change *narrow = need_change(r, TL_PLAN_CHANGE_REQUIREMENTS);
    assert_non_null(strstr(narrow->summary, "karpenter.k8s.aws/instance-category In ["));
    assert_false(tl_nodepool_reqs_allow(&narrow->requirements, tl_catalog_find("r5.2xlarge")));
    assert_false(tl_nodepool_reqs_allow(&narrow->requirements, tl_catalog_find("r6a.large")));
    assert_int_equal(narrow->drifted_nodes, 8);
    assert_null(change_of(r, TL_PLAN_CHANGE_CONSOLIDATION)); /* already WhenEmptyOrUnderutilized */
}

/* The caller knows what the pods' images need: with arch amd64 the same pool plans amd64 only. */
static void test_arch_input_keeps_the_plan_on_one_architecture(void **state)
{
    struct scenario *s = *state;
    nodepool(s, REQS("{\"key\":\"karpenter.k8s.aws/instance-category\",\"operator\":\"In\","
                     "\"values\":[\"m\"]}," ON_DEMAND));
    pods(s, 40, "shop/web", 1000, 4 * GIB, 400, 1536 * MIB);
    nodes(s, 6, "m5.2xlarge", TL_CAPACITY_ON_DEMAND);
    s->input.arch = TL_ARCH_AMD64;
    const struct tl_plan_result *r = plan(s);
    assert_true(r->after_recommended.nlines > 0);
    for (size_t i = 0; i < r->after_recommended.nlines; i++)
        assert_int_equal(tl_catalog_find(r->after_recommended.lines[i].type)->arch, TL_ARCH_AMD64);
    const struct tl_plan_change *narrow = need_change(r, TL_PLAN_CHANGE_REQUIREMENTS);
    assert_null(strstr(narrow->note, "arm64"));
}

/*
 * Many distinct pod sizes take the coarse path (main types ranked on requests rounded up by
 * about 9%). A pod of exactly m5.2xlarge's 7910m would round up past every type: it keeps its
 * size, and every pod is still placed, at its exact request.
 */
static void test_many_distinct_pods_are_all_placed(void **state)
{
    struct scenario *s = *state;
    nodepool(s, REQS(ONLY("\"m5.xlarge\",\"m5.2xlarge\"") "," ON_DEMAND));
    int64_t cpu = 0;
    int64_t mem = 0;
    for (size_t i = 0; i < 1100; i++) {
        pods(s, 1, "shop/many", 10 + (int64_t)i, 64 * MIB + (int64_t)i * MIB, 0, 0);
        cpu += 10 + (int64_t)i;
        mem += 64 * MIB + (int64_t)i * MIB;
    }
    pods(s, 1, "shop/whole-node", 7910, 1 * GIB, 0, 0);
    const struct tl_plan_result *r = plan(s);
    assert_true(r->after_current.nodes > 0);
    /* Every pod placed at its exact request, DaemonSets none. */
    assert_int_equal(r->after_current.requested_cpu_milli, cpu + 7910);
    assert_int_equal(r->after_current.requested_memory_bytes, mem + 1 * GIB);
    /* The whole-node pod takes an m5.2xlarge by itself: at least one is planned. */
    assert_true(count_of(&r->after_current, "m5.2xlarge") >= 1);
}

static void test_bounds_on_requests(void **state)
{
    struct scenario *s = *state;
    nodepool(s, REQS(ON_DEMAND));
    pods(s, 1, "shop/huge", TL_PLAN_CPU_MILLI_MAX + 1, GIB, 0, 0);
    s->input.npods = s->npods;
    struct tl_plan_result r;
    assert_int_equal(tl_nodepool_plan_compute(&s->input, &r), TL_ERANGE);
}

/* A pool that is already right needs no change and gets none. */
static void test_no_cheaper_plan(void **state)
{
    struct scenario *s = *state;
    nodepool(s, REQS(ONLY("\"m5.xlarge\"") "," ON_DEMAND));
    pods(s, 6, "shop/web", 1000, 2 * GIB, 0, 0);
    nodes(s, 2, "m5.xlarge", TL_CAPACITY_ON_DEMAND);
    const struct tl_plan_result *r = plan(s);
    assert_int_equal(r->verdict, TL_PLAN_NO_ADVICE);
    assert_string_equal(r->reason, "no cheaper plan: the current nodes cost $280.32/month and the "
                                   "recommended requests need $280.32/month");
}

static void test_is_deterministic(void **state)
{
    struct scenario *s = *state;
    nodepool(s, REQS("{\"key\":\"karpenter.k8s.aws/instance-category\",\"operator\":\"In\","
                     "\"values\":[\"c\",\"m\",\"r\"]}," ON_DEMAND));
    pods(s, 50, "shop/a", 250, 512 * MIB, 100, 256 * MIB);
    pods(s, 30, "shop/b", 2000, 8 * GIB, 1500, 6 * GIB);
    pods(s, 20, "shop/c", 500, 4 * GIB, 500, 2 * GIB);
    daemonset(s, "kube-system/aws-node", 25, 40 * MIB);
    nodes(s, 10, "m5.4xlarge", TL_CAPACITY_ON_DEMAND);
    static char first[4096];
    static char second[4096];
    assert_int_equal(tl_nodepool_plan_summary(plan(s), first, sizeof(first)), TL_OK);
    tl_nodepool_plan_result_free(&s->result);
    s->computed = false;
    assert_int_equal(tl_nodepool_plan_summary(plan(s), second, sizeof(second)), TL_OK);
    assert_string_equal(first, second);
    char tiny[16];
    assert_int_equal(tl_nodepool_plan_summary(&s->result, tiny, sizeof(tiny)), TL_ETOOBIG);
}

static void test_rejects_bad_input(void **state)
{
    struct scenario *s = *state;
    nodepool(s, REQS(ON_DEMAND));
    pods(s, 1, "shop/web", -1, GIB, 0, 0);
    s->input.npods = s->npods;
    struct tl_plan_result r;
    memset(&r, 0x5a, sizeof(r));
    assert_int_equal(tl_nodepool_plan_compute(&s->input, &r), TL_EINVAL);
    assert_int_equal(r.nchanges, (size_t)0x5a5a5a5a5a5a5a5aULL);
    s->pods[0].cpu_milli = 100;
    s->input.region = "mars-north-1";
    assert_int_equal(tl_nodepool_plan_compute(&s->input, &r), TL_ENOTFOUND);
    assert_int_equal(tl_nodepool_plan_compute(NULL, &r), TL_EINVAL);
    tl_nodepool_plan_result_free(NULL);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_packs_to_the_hand_computed_node_count),
        T(test_daemonset_overhead_reduces_room_per_node),
        T(test_max_pods_per_node),
        T(test_prices_current_nodes_by_capacity_type),
        cmocka_unit_test(test_spot_price_and_fallbacks),
        T(test_limits_make_the_plan_infeasible),
        T(test_guard_refuses_a_plan_that_costs_more),
        T(test_guard_threshold_is_a_parameter),
        T(test_pod_too_big_for_any_allowed_type),
        T(test_pod_with_too_much_memory),
        T(test_narrowing_honours_min_values_and_reports_drift),
        T(test_narrowing_prefers_the_coarsest_key),
        T(test_arch_input_keeps_the_plan_on_one_architecture),
        T(test_many_distinct_pods_are_all_placed),
        T(test_bounds_on_requests),
        T(test_no_cheaper_plan),
        T(test_is_deterministic),
        T(test_rejects_bad_input),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
