#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "nodepool_reconcile.h"

#define GIB INT64_C(1073741824)
#define MIB INT64_C(1048576)
#define T0  1795000000.0 /* a fixed "now" */

/* ---- Fixtures: the caches the operator keeps, filled from JSON like its informers do ---- */

static void free_pod(void *arg, void *p)
{
    (void)arg;
    tl_pod_free(p);
}

static void free_node(void *arg, void *p)
{
    (void)arg;
    tl_np_node_free(p);
}

static void free_workload(void *arg, void *p)
{
    (void)arg;
    tl_workload_free(p);
}

static void free_rec(void *arg, void *p)
{
    (void)arg;
    tl_rec_obj_free(p);
}

struct caches {
    struct tl_kube_store *pods;
    struct tl_kube_store *nodes;
    struct tl_kube_store *workloads[3];
    struct tl_kube_store *recs;
};

static struct caches cx;

static int caches_setup(void **state)
{
    (void)state;
    cx.pods = tl_kube_store_create(free_pod, NULL);
    cx.nodes = tl_kube_store_create(free_node, NULL);
    for (int i = 0; i < 3; i++)
        cx.workloads[i] = tl_kube_store_create(free_workload, NULL);
    cx.recs = tl_kube_store_create(free_rec, NULL);
    return 0;
}

static int caches_teardown(void **state)
{
    (void)state;
    tl_kube_store_destroy(cx.pods);
    tl_kube_store_destroy(cx.nodes);
    for (int i = 0; i < 3; i++)
        tl_kube_store_destroy(cx.workloads[i]);
    tl_kube_store_destroy(cx.recs);
    memset(&cx, 0, sizeof(cx));
    return 0;
}

static cJSON *parse(const char *text)
{
    cJSON *doc = cJSON_Parse(text);
    assert_non_null(doc);
    return doc;
}

static void put(struct tl_kube_store *store, const cJSON *obj, void *proj)
{
    struct tl_kube_store_meta meta;
    assert_int_equal(tl_kube_store_meta_from_json(obj, &meta), TL_OK);
    assert_int_equal(tl_kube_store_upsert(store, &meta, proj, NULL, NULL), TL_OK);
}

static void add_node(const char *name, const char *pool, const char *type, const char *capacity)
{
    char text[600];
    snprintf(text, sizeof(text),
             "{\"metadata\":{\"name\":\"%s\",\"uid\":\"u-%s\",\"labels\":{"
             "\"karpenter.sh/nodepool\":\"%s\",\"node.kubernetes.io/instance-type\":\"%s\","
             "\"karpenter.sh/capacity-type\":\"%s\"}}}",
             name, name, pool, type, capacity);
    cJSON *obj = parse(text);
    struct tl_np_node *node = NULL;
    assert_int_equal(tl_np_node_from_json(obj, &node), TL_OK);
    put(cx.nodes, obj, node);
    cJSON_Delete(obj);
}

static void add_workload(const char *ns, const char *kind, const char *name, const char *containers,
                         const char *init_containers)
{
    char text[2000];
    snprintf(text, sizeof(text),
             "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\",\"uid\":\"w-%s\"},\"spec\":{"
             "\"replicas\":2,\"template\":{\"spec\":{\"containers\":%s,\"initContainers\":%s}}}}",
             ns, name, name, containers, init_containers);
    cJSON *obj = parse(text);
    enum tl_workload_kind k = TL_KIND_DEPLOYMENT;
    assert_true(tl_workload_kind_parse(kind, &k));
    struct tl_workload *w = NULL;
    assert_int_equal(tl_workload_from_json(obj, k, &w), TL_OK);
    int slot = k == TL_KIND_STATEFULSET ? 1 : k == TL_KIND_DAEMONSET ? 2 : 0;
    put(cx.workloads[slot], obj, w);
    cJSON_Delete(obj);
}

/* A pod owned by kind/owner (ReplicaSet owners read as their Deployment) on node. */
static void add_pod(const char *ns, const char *name, const char *owner_kind, const char *owner,
                    const char *node, const char *phase, const char *cpu, const char *memory)
{
    char owners[300] = "[]";
    if (owner_kind)
        snprintf(owners, sizeof(owners),
                 "[{\"kind\":\"%s\",\"name\":\"%s\",\"controller\":true,\"uid\":\"o\"}]",
                 owner_kind, owner);
    char text[1500];
    snprintf(text, sizeof(text),
             "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\",\"uid\":\"p-%s\","
             "\"ownerReferences\":%s},\"spec\":{\"nodeName\":\"%s\",\"containers\":[{\"name\":"
             "\"c\",\"resources\":{\"requests\":{\"cpu\":\"%s\",\"memory\":\"%s\"}}}]},"
             "\"status\":{\"phase\":\"%s\",\"containerStatuses\":[{\"name\":\"c\",\"ready\":true,"
             "\"restartCount\":0}]}}",
             ns, name, name, owners, node, cpu, memory, phase);
    cJSON *obj = parse(text);
    struct tl_pod *pod = NULL;
    assert_int_equal(tl_pod_from_json(obj, &pod), TL_OK);
    put(cx.pods, obj, pod);
    cJSON_Delete(obj);
}

static void add_rec(const char *ns, const char *name, const char *status)
{
    char text[3000];
    snprintf(text, sizeof(text),
             "{\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\",\"uid\":\"r-%s\"},\"spec\":{"
             "\"targetRef\":{\"kind\":\"Deployment\",\"name\":\"x\"}},\"status\":%s}",
             ns, name, name, status);
    cJSON *obj = parse(text);
    struct tl_rec_obj *rec = NULL;
    assert_int_equal(tl_rec_obj_from_json(obj, &rec), TL_OK);
    put(cx.recs, obj, rec);
    cJSON_Delete(obj);
}

static struct tl_np_caches view(void)
{
    struct tl_np_caches c = {.pods = cx.pods, .nodes = cx.nodes, .recs = cx.recs};
    for (int i = 0; i < 3; i++)
        c.workloads[i] = cx.workloads[i];
    return c;
}

static const struct tl_plan_pod *find_pod(const struct tl_np_input *in, const char *name)
{
    for (size_t i = 0; i < in->npods; i++) {
        if (strcmp(in->pods[i].name, name) == 0)
            return &in->pods[i];
    }
    return NULL;
}

/* ---- Projections ---- */

static void test_node_projection_reads_pool_type_and_capacity(void **state)
{
    (void)state;
    add_node("n1", "batch", "c6i.2xlarge", "spot");
    add_node("n2", "general", "m6i.xlarge", "reserved");
    const struct tl_np_node *n1 = tl_kube_store_get(cx.nodes, "", "n1")->proj;
    const struct tl_np_node *n2 = tl_kube_store_get(cx.nodes, "", "n2")->proj;
    assert_string_equal(n1->pool, "batch");
    assert_string_equal(n1->instance_type, "c6i.2xlarge");
    assert_int_equal(n1->capacity, TL_CAPACITY_SPOT);
    /* Reserved capacity is priced as on-demand: never below what it costs. */
    assert_int_equal(n2->capacity, TL_CAPACITY_ON_DEMAND);

    cJSON *plain = parse("{\"metadata\":{\"name\":\"kind-control-plane\"}}");
    struct tl_np_node *n = NULL;
    assert_int_equal(tl_np_node_from_json(plain, &n), TL_OK);
    assert_null(n->pool);
    tl_np_node_free(n);
    cJSON_Delete(plain);
}

static void test_pool_projection_keeps_labels_and_reports_invalid_specs(void **state)
{
    (void)state;
    cJSON *ok = parse("{\"metadata\":{\"name\":\"general\",\"labels\":{\"team\":\"web\"}},"
                      "\"spec\":{\"template\":{\"spec\":{\"requirements\":[{\"key\":"
                      "\"kubernetes.io/arch\",\"operator\":\"In\",\"values\":[\"amd64\"]}]}},"
                      "\"limits\":{\"cpu\":\"64\"}}}");
    struct tl_np_pool *pool = NULL;
    assert_int_equal(tl_np_pool_from_json(ok, &pool), TL_OK);
    assert_true(pool->valid);
    assert_string_equal(tl_labels_get(&pool->labels, "team"), "web");
    assert_int_equal(pool->spec.limit_cpu_milli, 64000);
    tl_np_pool_free(pool);
    cJSON_Delete(ok);

    cJSON *bad =
        parse("{\"metadata\":{\"name\":\"bad\"},\"spec\":{\"template\":{\"spec\":{"
              "\"requirements\":[{\"key\":\"kubernetes.io/arch\",\"operator\":\"In\"}]}}}}");
    assert_int_equal(tl_np_pool_from_json(bad, &pool), TL_OK);
    assert_false(pool->valid);
    assert_non_null(strstr(pool->invalid_reason, "requirements[0]"));
    tl_np_pool_free(pool);
    cJSON_Delete(bad);
}

/* ---- Requests ---- */

static void test_workload_requests_count_sidecars_and_init_containers(void **state)
{
    (void)state;
    struct tl_container c[3] = {
        {.name = "app",
         .type = TL_CONTAINER_APP,
         .resources = {.cpu_request = 1, .memory_request = 2.0 * GIB}},
        {.name = "proxy",
         .type = TL_CONTAINER_SIDECAR,
         .resources = {.cpu_request = 0.1, .memory_request = 128.0 * MIB}},
        {.name = "migrate",
         .type = TL_CONTAINER_INIT,
         .resources = {.cpu_request = 2, .memory_request = 512.0 * MIB}},
    };
    struct tl_workload w = {.kind = TL_KIND_DEPLOYMENT, .containers = c, .ncontainers = 3};
    struct tl_np_requests r;
    tl_np_workload_requests(&w, NULL, &r);
    /* CPU: the init container (2) plus the sidecar beats app + sidecar (1.1). */
    assert_int_equal(r.cpu_milli, 2100);
    assert_int_equal(r.memory_bytes, 2 * GIB + 128 * MIB);
    assert_int_equal(r.rec_cpu_milli, r.cpu_milli);
    assert_false(r.advised);

    cJSON *status = parse(
        "{\"confidence\":\"Low\",\"containers\":[{\"name\":\"app\",\"recommended\":{\"requests\":"
        "{\"cpu\":\"250m\",\"memory\":\"512Mi\"}}},{\"name\":\"proxy\",\"recommended\":{"
        "\"requests\":{\"cpu\":\"50m\",\"memory\":\"64Mi\"}}},{\"name\":\"migrate\","
        "\"recommended\":{\"requests\":{\"cpu\":\"10m\",\"memory\":\"8Mi\"}}}]}");
    tl_np_workload_requests(&w, status, &r);
    assert_true(r.advised);
    assert_int_equal(r.confidence, TL_CONFIDENCE_LOW);
    /* Init containers keep their values (remediation does not change them): 2 + 0.05. */
    assert_int_equal(r.rec_cpu_milli, 2050);
    assert_int_equal(r.rec_memory_bytes, 512 * MIB + 64 * MIB);
    cJSON_Delete(status);

    /* A Recommendation without data gives no advice: the current values stand. */
    status = parse("{\"confidence\":\"None\",\"containers\":[{\"name\":\"app\",\"recommended\":"
                   "{\"requests\":{\"cpu\":\"1m\"}}}]}");
    tl_np_workload_requests(&w, status, &r);
    assert_false(r.advised);
    assert_int_equal(r.rec_cpu_milli, 2100);
    cJSON_Delete(status);
}

/* ---- The planner's input ---- */

static void test_input_takes_the_pools_nodes_and_the_pods_on_them(void **state)
{
    (void)state;
    add_node("a", "general", "m6i.2xlarge", "on-demand");
    add_node("b", "general", "c6i.2xlarge", "on-demand");
    add_node("s", "batch", "c5.xlarge", "spot");
    add_workload("shop", "Deployment", "web",
                 "[{\"name\":\"nginx\",\"resources\":{\"requests\":{\"cpu\":\"1\",\"memory\":"
                 "\"1Gi\"}}}]",
                 "[]");
    add_workload("shop", "Deployment", "cart",
                 "[{\"name\":\"cart\",\"resources\":{\"requests\":{\"cpu\":\"500m\",\"memory\":"
                 "\"256Mi\"}}}]",
                 "[]");
    add_workload("platform", "DaemonSet", "agent",
                 "[{\"name\":\"agent\",\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":"
                 "\"200Mi\"}}}]",
                 "[]");
    add_rec("shop", "deployment-web",
            "{\"confidence\":\"High\",\"lastAnalysisTime\":\"2026-11-20T10:00:00Z\","
            "\"containers\":[{\"name\":\"nginx\",\"recommended\":{\"requests\":{\"cpu\":\"200m\","
            "\"memory\":\"256Mi\"}}}]}");
    add_rec("shop", "deployment-cart",
            "{\"confidence\":\"Low\",\"lastAnalysisTime\":\"2026-11-21T10:00:00Z\","
            "\"containers\":[{\"name\":\"cart\",\"recommended\":{\"requests\":{\"cpu\":\"600m\","
            "\"memory\":\"300Mi\"}}}]}");
    add_pod("shop", "web-1", "ReplicaSet", "web-6d4f", "a", "Running", "1", "1Gi");
    add_pod("shop", "web-2", "ReplicaSet", "web-6d4f", "b", "Running", "1", "1Gi");
    add_pod("shop", "cart-1", "ReplicaSet", "cart-77c", "a", "Running", "500m", "256Mi");
    add_pod("shop", "cart-2", "ReplicaSet", "cart-77c", "s", "Running", "500m", "256Mi");
    add_pod("platform", "agent-a", "DaemonSet", "agent", "a", "Running", "100m", "200Mi");
    add_pod("platform", "agent-b", "DaemonSet", "agent", "b", "Running", "100m", "200Mi");
    add_pod("ops", "debug", NULL, NULL, "b", "Running", "300m", "64Mi");
    add_pod("ops", "job-done", "Job", "backup", "a", "Succeeded", "2", "4Gi");

    struct tl_np_caches c = view();
    struct tl_np_input in;
    assert_int_equal(tl_np_input_build(&c, "general", &in), TL_OK);
    assert_int_equal(in.nnodes, 2);
    /* web x2, cart-1, the DaemonSet once, the bare pod; not cart-2 (batch), not the done Job. */
    assert_int_equal(in.npods, 5);
    assert_int_equal(in.running_pods, 6);
    const struct tl_plan_pod *web = find_pod(&in, "shop/web-1");
    assert_non_null(web);
    assert_int_equal(web->cpu_milli, 1000);
    assert_int_equal(web->rec_cpu_milli, 200);
    assert_int_equal(web->rec_memory_bytes, 256 * MIB);
    const struct tl_plan_pod *agent = find_pod(&in, "platform/agent");
    assert_non_null(agent);
    assert_true(agent->daemonset);
    assert_int_equal(agent->cpu_milli, 100);
    const struct tl_plan_pod *debug = find_pod(&in, "ops/debug");
    assert_non_null(debug);
    assert_int_equal(debug->cpu_milli, 300);
    assert_int_equal(debug->rec_cpu_milli, 300);
    assert_null(find_pod(&in, "shop/cart-2"));
    assert_null(find_pod(&in, "ops/job-done"));
    /* The lowest confidence of the workloads with advice, and their newest analysis. */
    assert_int_equal(in.advised_workloads, 2);
    assert_int_equal(in.confidence, TL_CONFIDENCE_LOW);
    assert_string_equal(in.last_analysis, "2026-11-21T10:00:00Z");
    /* Every running pod counts in the display totals: 2 + 0.5 + 0.2 + 0.3. */
    assert_true(fabs(in.cpu_cores - 3.0) < 1e-9);
    assert_true(fabs(in.rec_cpu_cores - (0.4 + 0.6 + 0.2 + 0.3)) < 1e-9);
    tl_np_input_free(&in);

    assert_int_equal(tl_np_input_build(&c, "batch", &in), TL_OK);
    assert_int_equal(in.nnodes, 1);
    assert_int_equal(in.nodes[0].capacity, TL_CAPACITY_SPOT);
    assert_int_equal(in.npods, 1);
    tl_np_input_free(&in);

    /* No workload with advice: Medium, the planner's own confidence in current requests. */
    assert_int_equal(tl_np_input_build(&c, "empty", &in), TL_OK);
    assert_int_equal(in.npods, 0);
    assert_int_equal(in.confidence, TL_CONFIDENCE_MEDIUM);
    tl_np_input_free(&in);
}

/* ---- The status ---- */

/* A general-purpose pool with WhenEmpty consolidation, 3 m6i.2xlarge nodes, and 6 pods that
 * request 1 CPU / 2Gi and are advised down to 250m / 512Mi. */
struct plan_fixture {
    struct tl_np_pool *pool;
    struct tl_plan_pod pods[6];
    struct tl_plan_node nodes[3];
    struct tl_np_input input;
    struct tl_plan_result plan;
    struct tl_policy policy;
};

static struct plan_fixture px;

static const char *const pool_json =
    "{\"metadata\":{\"name\":\"general\"},\"spec\":{\"template\":{\"spec\":{\"requirements\":["
    "{\"key\":\"karpenter.sh/capacity-type\",\"operator\":\"In\",\"values\":[\"on-demand\"]},"
    "{\"key\":\"karpenter.k8s.aws/instance-category\",\"operator\":\"In\",\"values\":[\"m\","
    "\"c\",\"r\"]},{\"key\":\"karpenter.k8s.aws/instance-generation\",\"operator\":\"Gte\","
    "\"values\":[\"6\"]},{\"key\":\"kubernetes.io/arch\",\"operator\":\"In\",\"values\":["
    "\"amd64\"]}]}},\"limits\":{\"cpu\":\"200\",\"memory\":\"800Gi\"},\"disruption\":{"
    "\"consolidationPolicy\":\"WhenEmpty\",\"consolidateAfter\":\"5m\"}}}";

static void plan_pool(const char *json)
{
    cJSON *obj = parse(json);
    tl_np_pool_free(px.pool);
    px.pool = NULL;
    assert_int_equal(tl_np_pool_from_json(obj, &px.pool), TL_OK);
    cJSON_Delete(obj);
    assert_true(px.pool->valid);
    tl_nodepool_plan_result_free(&px.plan);
    struct tl_plan_input in;
    tl_nodepool_plan_input_defaults(&in);
    in.region = "us-east-1";
    in.nodepool = &px.pool->spec;
    in.pods = px.pods;
    in.npods = 6;
    in.nodes = px.nodes;
    in.nnodes = 3;
    assert_int_equal(tl_nodepool_plan_compute(&in, &px.plan), TL_OK);
}

static int plan_setup(void **state)
{
    (void)state;
    memset(&px, 0, sizeof(px));
    for (int i = 0; i < 6; i++)
        px.pods[i] = (struct tl_plan_pod){.name = "shop/web",
                                          .cpu_milli = 1000,
                                          .memory_bytes = 2 * GIB,
                                          .rec_cpu_milli = 250,
                                          .rec_memory_bytes = 512 * MIB};
    for (int i = 0; i < 3; i++)
        px.nodes[i] = (struct tl_plan_node){.instance_type = "m6i.2xlarge",
                                            .capacity = TL_CAPACITY_ON_DEMAND};
    px.input.confidence = TL_CONFIDENCE_HIGH;
    px.input.cpu_cores = 6;
    px.input.rec_cpu_cores = 1.5;
    px.input.memory_bytes = 12.0 * GIB;
    px.input.rec_memory_bytes = 3.0 * GIB;
    char err[200];
    cJSON *spec = parse("{\"approval\":{\"mode\":\"Manual\"},\"nodePools\":{\"selector\":{}}}");
    assert_int_equal(tl_policy_parse(spec, &px.policy, err, sizeof(err)), TL_OK);
    cJSON_Delete(spec);
    plan_pool(pool_json);
    return 0;
}

static int plan_teardown(void **state)
{
    (void)state;
    tl_np_pool_free(px.pool);
    tl_nodepool_plan_result_free(&px.plan);
    tl_policy_free(&px.policy);
    return 0;
}

static cJSON *build(const cJSON *previous, int64_t approved, struct tl_np_status_info *info)
{
    struct tl_np_status_input in = {.name = "general",
                                    .pool = px.pool,
                                    .plan = &px.plan,
                                    .region = "us-east-1",
                                    .input = &px.input,
                                    .previous = previous,
                                    .approved_revision = approved,
                                    .generation = 3,
                                    .now = T0};
    cJSON *status = tl_np_status_build(&in, info);
    assert_non_null(status);
    return status;
}

static const char *str(const cJSON *status, const char *a, const char *b, const char *c)
{
    const cJSON *item = tl_json_get(status, a, b, c, NULL);
    assert_true(cJSON_IsString(item));
    return item->valuestring;
}

static double num(const cJSON *status, const char *a, const char *b, const char *c)
{
    const cJSON *item = tl_json_get(status, a, b, c, NULL);
    assert_true(cJSON_IsNumber(item));
    return item->valuedouble;
}

static const cJSON *condition(const cJSON *status, const char *type)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(status, "conditions"))
    {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(c, "type")->valuestring, type) == 0)
            return c;
    }
    return NULL;
}

static void test_status_shows_the_plan_as_the_schema_wants(void **state)
{
    (void)state;
    assert_int_equal(px.plan.verdict, TL_PLAN_CHANGE);
    struct tl_np_status_info info;
    cJSON *s = build(NULL, 0, &info);
    assert_int_equal((int)num(s, "revision", NULL, NULL), 1);
    assert_string_equal(str(s, "phase", NULL, NULL), "Pending");
    assert_string_equal(str(s, "confidence", NULL, NULL), "High");
    assert_string_equal(str(s, "display", "target", NULL), "NodePool/general");
    assert_string_equal(str(s, "display", "cpu", NULL), "6\xE2\x86\x92"
                                                        "1500m");
    /* 3 m6i.2xlarge at $0.384 for 730 hours. */
    assert_string_equal(str(s, "nodePool", "monthlyCost", "current"), "840.96");
    assert_int_equal((int)num(s, "nodePool", "nodes", "current"), 3);
    const struct tl_plan_fleet *after = &px.plan.after_recommended;
    char want[32];
    snprintf(want, sizeof(want), "%.2f", after->monthly_usd);
    assert_string_equal(str(s, "nodePool", "monthlyCost", "proposed"), want);
    assert_int_equal((int)num(s, "nodePool", "nodes", "proposed"), (int)after->nodes);
    snprintf(want, sizeof(want), "%.2f", 840.96 - after->monthly_usd);
    assert_string_equal(str(s, "savings", "monthlyUSD", NULL), want);
    /* The explanation names the planned nodes, so the cost can be checked by hand. */
    char words[64];
    snprintf(words, sizeof(words), "%u %s", after->lines[0].count, after->lines[0].type);
    assert_non_null(strstr(str(s, "explanation", NULL, NULL), words));
    assert_non_null(strstr(str(s, "explanation", NULL, NULL), "instead of the 3 running"));

    /* Gte is not in the Recommendation's schema: Gte 6 reads Gt 5. */
    const cJSON *reqs = tl_json_get(s, "nodePool", "current", "requirements", NULL);
    const cJSON *gen = cJSON_GetArrayItem(reqs, 2);
    assert_string_equal(str(gen, "operator", NULL, NULL), "Gt");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(gen, "values"), 0)->valuestring,
                        "5");
    const cJSON *limits = tl_json_get(s, "nodePool", "current", "limits", NULL);
    assert_string_equal(str(limits, "cpu", NULL, NULL), "200");
    assert_string_equal(str(limits, "memory", NULL, NULL), "800Gi");
    const cJSON *caps = tl_json_get(s, "nodePool", "current", "capacityTypes", NULL);
    assert_int_equal(tl_json_size(caps), 1);
    assert_string_equal(cJSON_GetArrayItem(caps, 0)->valuestring, "on-demand");
    /* The planned types come first among those shown, at most 50. */
    const cJSON *types = tl_json_get(s, "nodePool", "proposed", "instanceTypes", NULL);
    assert_true(tl_json_size(types) <= 50);
    assert_string_equal(cJSON_GetArrayItem(types, 0)->valuestring, after->lines[0].type);

    /* WhenEmpty keeps nodes with one pod: the advice turns consolidation on, and narrows. */
    assert_int_equal(info.changes, TL_NP_CHANGE_REQUIREMENTS | TL_NP_CHANGE_CONSOLIDATION);
    assert_string_equal(str(condition(s, "Proposal"), "reason", NULL, NULL),
                        "Requirements,Consolidation");
    assert_true(cJSON_IsTrue(tl_json_get(s, "nodePool", "drift", NULL)));
    assert_non_null(strstr(str(s, "nodePool", "disruption", NULL), "drifts the 3 running nodes"));
    /* The narrowing replaces the category's values, and keeps the other requirements. */
    const cJSON *proposed = tl_json_get(s, "nodePool", "proposed", "requirements", NULL);
    assert_int_equal(tl_json_size(proposed), 4);
    assert_false(tl_json_equal(proposed, reqs));
    assert_true(tl_json_equal(cJSON_GetArrayItem(proposed, 3), cJSON_GetArrayItem(reqs, 3)));
    assert_string_equal(str(condition(s, "Ready"), "status", NULL, NULL), "True");
    cJSON_Delete(s);
}

static void test_revision_moves_only_with_the_proposal(void **state)
{
    (void)state;
    struct tl_np_status_info info;
    cJSON *first = build(NULL, 0, &info);
    assert_true(info.material);
    /* Same plan: same revision, and the very same status (no write). */
    cJSON *again = build(first, 0, &info);
    assert_false(info.material);
    assert_true(tl_json_equal(first, again));
    /* Costs that wobble are not a new proposal. */
    px.pods[0].rec_cpu_milli = 260;
    plan_pool(pool_json);
    cJSON *wobble = build(first, 0, &info);
    assert_int_equal(info.revision, 1);
    /* An approval of the current revision: Approved; of another: a stale approval. */
    cJSON *approved = build(first, 1, &info);
    assert_string_equal(str(approved, "phase", NULL, NULL), "Approved");
    cJSON *stale = build(first, 7, &info);
    assert_string_equal(str(condition(stale, "ApprovalCurrent"), "reason", NULL, NULL),
                        "StaleApproval");
    /* Pods that need far more capacity: other limits, a new revision. */
    for (int i = 0; i < 6; i++) {
        px.pods[i].rec_cpu_milli = 30000;
        px.pods[i].cpu_milli = 30000;
    }
    plan_pool(pool_json);
    cJSON *bigger = build(first, 1, &info);
    assert_true(info.material);
    assert_int_equal(info.revision, 2);
    assert_string_not_equal(str(bigger, "phase", NULL, NULL), "Approved");
    cJSON_Delete(first);
    cJSON_Delete(again);
    cJSON_Delete(wobble);
    cJSON_Delete(approved);
    cJSON_Delete(stale);
    cJSON_Delete(bigger);
}

/* The proposal written to the NodePool: the next plan advises nothing, and the revision stays,
 * Applied. */
static void test_applied_proposal_keeps_its_revision(void **state)
{
    (void)state;
    struct tl_np_status_info info;
    cJSON *first = build(NULL, 1, &info);
    struct tl_np_action action = {.revision = 1, .by = "manual"};
    tl_np_record_apply(first, NULL, &action, true, NULL, "consolidationPolicy: WhenEmpty",
                       "consolidationPolicy: WhenEmptyOrUnderutilized", T0);
    assert_string_equal(action.event_reason, "Applied");
    assert_int_equal((int)num(first, "lastAppliedRevision", NULL, NULL), 1);

    /* The NodePool as applied: the proposed requirements, consolidation on. */
    const cJSON *reqs = tl_json_get(first, "nodePool", "proposed", "requirements", NULL);
    char *text = cJSON_PrintUnformatted(reqs);
    char json[4000];
    snprintf(json, sizeof(json),
             "{\"metadata\":{\"name\":\"general\"},\"spec\":{\"template\":{\"spec\":{"
             "\"requirements\":%s}},\"limits\":{\"cpu\":\"200\",\"memory\":\"800Gi\"},"
             "\"disruption\":{\"consolidationPolicy\":\"WhenEmptyOrUnderutilized\","
             "\"consolidateAfter\":\"5m\"}}}",
             text);
    cJSON_free(text);
    plan_pool(json);
    assert_int_not_equal(px.plan.verdict, TL_PLAN_CHANGE);
    cJSON *after = build(first, 1, &info);
    assert_false(info.material);
    assert_int_equal(info.changes, 0);
    assert_int_equal((int)num(after, "revision", NULL, NULL), 1);
    assert_string_equal(str(after, "phase", NULL, NULL), "Applied");
    assert_string_equal(str(condition(after, "Proposal"), "reason", NULL, NULL),
                        "Requirements,Consolidation");
    assert_int_equal(tl_json_size(cJSON_GetObjectItem(after, "history")), 1);
    assert_string_equal(str(after, "savings", "monthlyUSD", NULL), "0.00");
    cJSON_Delete(first);
    cJSON_Delete(after);
}

static void test_no_advice_is_up_to_date_with_the_planners_reason(void **state)
{
    (void)state;
    /* The pods grow: the plan costs far more than the nodes now, above the 10% guard. */
    for (int i = 0; i < 6; i++) {
        px.pods[i].rec_cpu_milli = 7000;
        px.pods[i].rec_memory_bytes = 8 * GIB;
    }
    plan_pool(pool_json);
    assert_int_equal(px.plan.verdict, TL_PLAN_NO_ADVICE);
    struct tl_np_status_info info;
    cJSON *s = build(NULL, 0, &info);
    assert_string_equal(str(s, "phase", NULL, NULL), "UpToDate");
    assert_string_equal(str(s, "savings", "monthlyUSD", NULL), "0.00");
    assert_string_equal(str(condition(s, "Proposal"), "reason", NULL, NULL), "NoChange");
    assert_non_null(strstr(str(condition(s, "Ready"), "message", NULL, NULL), "no cheaper plan"));
    assert_non_null(strstr(str(s, "explanation", NULL, NULL), "No NodePool change is advised"));
    /* Nothing changes: the proposal is the NodePool as it is. */
    assert_true(tl_json_equal(tl_json_get(s, "nodePool", "current", "requirements", NULL),
                              tl_json_get(s, "nodePool", "proposed", "requirements", NULL)));
    assert_false(cJSON_IsTrue(tl_json_get(s, "nodePool", "drift", NULL)));
    cJSON_Delete(s);
}

static void test_problem_is_reported_not_planned(void **state)
{
    (void)state;
    struct tl_np_status_input in = {.name = "general",
                                    .pool = px.pool,
                                    .problem =
                                        "The NodePool cannot be planned: spec.pricing.region "
                                        "xx-east-9 is not in the price catalog.",
                                    .region = "xx-east-9",
                                    .now = T0,
                                    .generation = 1};
    struct tl_np_status_info info;
    cJSON *s = tl_np_status_build(&in, &info);
    assert_non_null(s);
    assert_string_equal(str(s, "confidence", NULL, NULL), "None");
    assert_string_equal(str(condition(s, "Ready"), "status", NULL, NULL), "False");
    assert_non_null(strstr(str(s, "explanation", NULL, NULL), "xx-east-9"));
    assert_string_equal(str(s, "phase", NULL, NULL), "UpToDate");
    cJSON_Delete(s);
}

/* ---- Remediation ---- */

static void remediate(cJSON *status, const cJSON *previous, const struct tl_np_status_info *info,
                      int64_t approved, struct tl_np_action *out)
{
    struct tl_np_remediate_input in = {.policy = &px.policy,
                                       .info = info,
                                       .previous = previous,
                                       .approved_revision = approved,
                                       .now = T0,
                                       .change = "requirements: x"};
    tl_np_remediate(&in, status, out);
}

static void test_manual_applies_only_the_approved_revision(void **state)
{
    (void)state;
    struct tl_np_status_info info;
    cJSON *s = build(NULL, 0, &info);
    struct tl_np_action action;
    remediate(s, NULL, &info, 0, &action);
    assert_false(action.apply);
    cJSON_Delete(s);

    s = build(NULL, 1, &info);
    remediate(s, NULL, &info, 1, &action);
    assert_true(action.apply);
    assert_int_equal(action.revision, 1);
    assert_string_equal(action.by, "manual");
    /* A drifting change is a person's call in Manual mode, allowDrift or not. */
    assert_true(info.drifts);
    assert_false(px.policy.node_pools.allow_drift);
    cJSON_Delete(s);
}

static void test_guardrails_hold_the_change_back(void **state)
{
    (void)state;
    char err[200];
    struct tl_np_status_info info;
    struct tl_np_action action;

    /* Outside the policy's window an approval waits. */
    tl_policy_free(&px.policy);
    cJSON *spec = parse("{\"approval\":{\"mode\":\"Manual\",\"window\":{\"schedule\":\"0 0 1 1 *\","
                        "\"duration\":\"1h\"}},\"nodePools\":{\"selector\":{}}}");
    assert_int_equal(tl_policy_parse(spec, &px.policy, err, sizeof(err)), TL_OK);
    cJSON_Delete(spec);
    cJSON *s = build(NULL, 1, &info);
    remediate(s, NULL, &info, 1, &action);
    assert_false(action.apply);
    assert_string_equal(str(condition(s, "Remediation"), "reason", NULL, NULL), "OutsideWindow");
    assert_true(action.requeue_after > 0);
    cJSON_Delete(s);

    /* Auto does not drift nodes without allowDrift, unless a person approves. */
    tl_policy_free(&px.policy);
    spec = parse("{\"approval\":{\"mode\":\"Auto\"},\"nodePools\":{\"selector\":{}}}");
    assert_int_equal(tl_policy_parse(spec, &px.policy, err, sizeof(err)), TL_OK);
    cJSON_Delete(spec);
    s = build(NULL, 0, &info);
    remediate(s, NULL, &info, 0, &action);
    assert_false(action.apply);
    assert_string_equal(str(condition(s, "Remediation"), "reason", NULL, NULL), "DriftNotAllowed");
    cJSON_Delete(s);
    s = build(NULL, 1, &info);
    remediate(s, NULL, &info, 1, &action);
    assert_true(action.apply);
    cJSON_Delete(s);

    /* Off: advice only, whatever spec.approval says. */
    tl_policy_free(&px.policy);
    spec = parse("{\"approval\":{\"mode\":\"Off\"},\"nodePools\":{\"selector\":{}}}");
    assert_int_equal(tl_policy_parse(spec, &px.policy, err, sizeof(err)), TL_OK);
    cJSON_Delete(spec);
    s = build(NULL, 1, &info);
    remediate(s, NULL, &info, 1, &action);
    assert_false(action.apply);
    assert_string_equal(str(condition(s, "Remediation"), "reason", NULL, NULL), "ModeOff");
    cJSON_Delete(s);
}

static void test_dry_run_reports_instead_of_writing(void **state)
{
    (void)state;
    struct tl_np_status_info info;
    cJSON *s = build(NULL, 1, &info);
    struct tl_np_action action;
    struct tl_np_remediate_input in = {.policy = &px.policy,
                                       .info = &info,
                                       .approved_revision = 1,
                                       .dry_run = true,
                                       .now = T0,
                                       .change = "requirements: x"};
    tl_np_remediate(&in, s, &action);
    assert_false(action.apply);
    assert_string_equal(action.event_reason, "DryRun");
    assert_string_equal(str(condition(s, "Remediation"), "reason", NULL, NULL), "DryRun");
    cJSON_Delete(s);
}

static void test_failed_write_is_recorded_and_retried_later(void **state)
{
    (void)state;
    struct tl_np_status_info info;
    cJSON *s = build(NULL, 1, &info);
    struct tl_np_action action;
    remediate(s, NULL, &info, 1, &action);
    assert_true(action.apply);
    tl_np_record_apply(s, NULL, &action, false, "HTTP 403: forbidden", "a", "b", T0);
    assert_string_equal(str(s, "phase", NULL, NULL), "Failed");
    assert_string_equal(action.event_reason, "ApplyFailed");
    const cJSON *entry = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "history"), 0);
    assert_string_equal(str(entry, "result", NULL, NULL), "Failed");
    assert_string_equal(str(entry, "from", NULL, NULL), "a");
    assert_null(cJSON_GetObjectItem(s, "lastAppliedRevision"));

    /* A minute later it waits; after five it tries again. */
    cJSON *next = build(s, 1, &info);
    struct tl_np_remediate_input in = {.policy = &px.policy,
                                       .info = &info,
                                       .previous = s,
                                       .approved_revision = 1,
                                       .now = T0 + 60,
                                       .change = ""};
    tl_np_remediate(&in, next, &action);
    assert_false(action.apply);
    assert_string_equal(str(next, "phase", NULL, NULL), "Failed");
    assert_true(action.requeue_after > 200 && action.requeue_after <= 240);
    cJSON_Delete(next);
    next = build(s, 1, &info);
    in.now = T0 + 301;
    tl_np_remediate(&in, next, &action);
    assert_true(action.apply);
    cJSON_Delete(next);
    cJSON_Delete(s);
}

/* ---- Writing the NodePool ---- */

static void test_apply_body_names_only_the_advised_fields(void **state)
{
    (void)state;
    char from[1024];
    char to[1024];
    cJSON *body =
        tl_np_apply_body("general", &px.pool->spec, &px.plan, from, sizeof(from), to, sizeof(to));
    assert_non_null(body);
    assert_string_equal(str(body, "apiVersion", NULL, NULL), "karpenter.sh/v1");
    assert_string_equal(str(body, "kind", NULL, NULL), "NodePool");
    assert_string_equal(str(body, "metadata", "name", NULL), "general");
    const cJSON *spec = cJSON_GetObjectItem(body, "spec");
    /* Requirements and consolidation; not limits, not weight, not the template's rest. */
    assert_int_equal(tl_json_size(spec), 2);
    const cJSON *tspec = tl_json_get(spec, "template", "spec", NULL);
    assert_int_equal(tl_json_size(tl_json_get(spec, "template", NULL)), 1);
    assert_int_equal(tl_json_size(tspec), 1);
    /* The whole list: the CRD makes it atomic, so applying it replaces it. */
    const cJSON *reqs = cJSON_GetObjectItem(tspec, "requirements");
    assert_int_equal(tl_json_size(reqs), 4);
    /* Written as the NodePool had it: Gte stays Gte there. */
    assert_string_equal(str(cJSON_GetArrayItem(reqs, 2), "operator", NULL, NULL), "Gte");
    const cJSON *disruption = cJSON_GetObjectItem(spec, "disruption");
    assert_int_equal(tl_json_size(disruption), 1);
    assert_string_equal(str(disruption, "consolidationPolicy", NULL, NULL),
                        "WhenEmptyOrUnderutilized");
    assert_non_null(strstr(from, "consolidationPolicy: WhenEmpty"));
    /* The narrowed key before and after; the requirements it leaves alone are not listed. */
    assert_non_null(strstr(from, "karpenter.k8s.aws/instance-category In [m, c, r]"));
    assert_non_null(strstr(to, "karpenter.k8s.aws/instance-category In ["));
    assert_non_null(strstr(to, "karpenter.k8s.aws/instance-"));
    assert_null(strstr(to, "kubernetes.io/arch")); /* unchanged requirements are not listed */
    cJSON_Delete(body);
}

static void test_apply_body_for_limits_and_never(void **state)
{
    (void)state;
    /* Pods that outgrow spec.limits on a pool that never consolidates. */
    for (int i = 0; i < 6; i++) {
        px.pods[i].cpu_milli = px.pods[i].rec_cpu_milli = 7000;
        px.pods[i].memory_bytes = px.pods[i].rec_memory_bytes = 8 * GIB;
    }
    plan_pool("{\"metadata\":{\"name\":\"small\"},\"spec\":{\"template\":{\"spec\":{"
              "\"requirements\":[{\"key\":\"karpenter.k8s.aws/instance-family\",\"operator\":"
              "\"In\",\"values\":[\"m6i\"]}]}},\"limits\":{\"cpu\":\"16\"},\"disruption\":{"
              "\"consolidateAfter\":\"Never\"}}}");
    char from[1024];
    char to[1024];
    cJSON *body =
        tl_np_apply_body("small", &px.pool->spec, &px.plan, from, sizeof(from), to, sizeof(to));
    assert_non_null(body);
    const cJSON *limits = tl_json_get(body, "spec", "limits", NULL);
    assert_non_null(limits);
    /* Room for the plan's nodes plus one more: 48 + 48 cores. */
    assert_string_equal(str(limits, "cpu", NULL, NULL), "96");
    assert_null(cJSON_GetObjectItem(limits, "memory")); /* unset stays unset */
    assert_non_null(strstr(from, "limits: cpu 16"));
    assert_non_null(strstr(to, "limits: cpu 96"));
    /* consolidateAfter: Never would keep consolidation off whatever the policy says. */
    const cJSON *disruption = tl_json_get(body, "spec", "disruption", NULL);
    assert_string_equal(str(disruption, "consolidateAfter", NULL, NULL), "0s");
    assert_string_equal(str(disruption, "consolidationPolicy", NULL, NULL),
                        "WhenEmptyOrUnderutilized");
    cJSON_Delete(body);

    struct tl_plan_result none;
    memset(&none, 0, sizeof(none));
    none.verdict = TL_PLAN_NO_ADVICE;
    assert_null(
        tl_np_apply_body("small", &px.pool->spec, &none, from, sizeof(from), to, sizeof(to)));
}

static void test_rec_name_fits_a_dns_subdomain(void **state)
{
    (void)state;
    char *name = tl_np_rec_name("general");
    assert_string_equal(name, "nodepool-general");
    free(name);
    char long_name[254];
    memset(long_name, 'a', 253);
    long_name[253] = '\0';
    long_name[235] = '.'; /* a cut that would end in a dot */
    char *a = tl_np_rec_name(long_name);
    long_name[10] = 'b';
    char *b = tl_np_rec_name(long_name);
    assert_true(strlen(a) <= 253);
    assert_true(strncmp(a, "nodepool-aaa", 12) == 0);
    assert_null(strstr(a, ".-"));
    assert_string_not_equal(a, b); /* the hash tells them apart */
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_node_projection_reads_pool_type_and_capacity,
                                        caches_setup, caches_teardown),
        cmocka_unit_test(test_pool_projection_keeps_labels_and_reports_invalid_specs),
        cmocka_unit_test(test_workload_requests_count_sidecars_and_init_containers),
        cmocka_unit_test_setup_teardown(test_input_takes_the_pools_nodes_and_the_pods_on_them,
                                        caches_setup, caches_teardown),
        cmocka_unit_test_setup_teardown(test_status_shows_the_plan_as_the_schema_wants, plan_setup,
                                        plan_teardown),
        cmocka_unit_test_setup_teardown(test_revision_moves_only_with_the_proposal, plan_setup,
                                        plan_teardown),
        cmocka_unit_test_setup_teardown(test_applied_proposal_keeps_its_revision, plan_setup,
                                        plan_teardown),
        cmocka_unit_test_setup_teardown(test_no_advice_is_up_to_date_with_the_planners_reason,
                                        plan_setup, plan_teardown),
        cmocka_unit_test_setup_teardown(test_problem_is_reported_not_planned, plan_setup,
                                        plan_teardown),
        cmocka_unit_test_setup_teardown(test_manual_applies_only_the_approved_revision, plan_setup,
                                        plan_teardown),
        cmocka_unit_test_setup_teardown(test_guardrails_hold_the_change_back, plan_setup,
                                        plan_teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_reports_instead_of_writing, plan_setup,
                                        plan_teardown),
        cmocka_unit_test_setup_teardown(test_failed_write_is_recorded_and_retried_later, plan_setup,
                                        plan_teardown),
        cmocka_unit_test_setup_teardown(test_apply_body_names_only_the_advised_fields, plan_setup,
                                        plan_teardown),
        cmocka_unit_test_setup_teardown(test_apply_body_for_limits_and_never, plan_setup,
                                        plan_teardown),
        cmocka_unit_test(test_rec_name_fits_a_dns_subdomain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
