/*
 * Plans a 50,000-pod NodePool over every c, m and r type in the catalog and prints the CPU time
 * of one tl_nodepool_plan_compute call and the plan. The pod mix is generated (fixed seed): 400
 * Deployments whose requests range from 50m to 4 CPU at 1 to 8 GiB per CPU, recommended
 * requests 25-90% of CPU and 40-95% of memory, and three DaemonSets. The current fleet is what
 * a pool of m5.4xlarge needs for the current requests plus 15% slack.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nodepool_plan.h"
#include "recommend.h"

#define PODS        50000
#define DEPLOYMENTS 400
#define MIB         INT64_C(1048576)
#define GIB         (1024 * MIB)

static uint64_t lcg_state = 42;

static uint32_t next(void)
{
    lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(lcg_state >> 33);
}

static int64_t pick_cpu(void)
{
    static const struct {
        int64_t milli;
        uint32_t weight;
    } table[] = {{50, 15}, {100, 20}, {250, 25}, {500, 20}, {1000, 12}, {2000, 6}, {4000, 2}};
    uint32_t r = next() % 100;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (r < table[i].weight)
            return table[i].milli;
        r -= table[i].weight;
    }
    return 250;
}

static const char nodepool_json[] =
    "{\"apiVersion\":\"karpenter.sh/v1\",\"kind\":\"NodePool\",\"metadata\":{\"name\":\"general\"},"
    "\"spec\":{\"template\":{\"spec\":{\"requirements\":["
    "{\"key\":\"karpenter.k8s.aws/instance-category\",\"operator\":\"In\",\"values\":[\"c\",\"m\","
    "\"r\"]},"
    "{\"key\":\"karpenter.sh/capacity-type\",\"operator\":\"In\",\"values\":[\"on-demand\"]}]}},"
    "\"limits\":{\"cpu\":\"100000\",\"memory\":\"400000Gi\"},"
    "\"disruption\":{\"consolidationPolicy\":\"WhenEmpty\",\"consolidateAfter\":\"1m\"}}}";

int main(void)
{
    int status = 1;
    struct tl_plan_pod *pods = calloc(PODS + 3, sizeof(*pods));
    char(*names)[48] = calloc(DEPLOYMENTS + 3, sizeof(*names));
    struct tl_plan_node *nodes = NULL;
    cJSON *json = cJSON_Parse(nodepool_json);
    struct tl_nodepool_spec spec;
    memset(&spec, 0, sizeof(spec));
    char err[256];
    if (pods == NULL || names == NULL || json == NULL ||
        tl_nodepool_spec_parse(json, &spec, err, sizeof(err)) != TL_OK) {
        fprintf(stderr, "setup failed\n");
        goto out;
    }

    size_t n = 0;
    int64_t total_cpu = 0;
    int64_t total_mem = 0;
    for (size_t d = 0; d < DEPLOYMENTS && n < PODS; d++) {
        int64_t cpu = pick_cpu();
        int64_t gib_per_cpu = (int64_t)1 << (next() % 4); /* 1, 2, 4 or 8 */
        int64_t mem = (cpu * gib_per_cpu * GIB / 1000 + 64 * MIB - 1) / (64 * MIB) * (64 * MIB);
        double cpu_share = 0.25 + (double)(next() % 66) / 100.0;
        double mem_share = 0.40 + (double)(next() % 56) / 100.0;
        int64_t rec_cpu = (int64_t)(tl_round_cpu((double)cpu * cpu_share / 1000.0) * 1000.0);
        int64_t rec_mem = (int64_t)tl_round_memory((double)mem * mem_share);
        size_t replicas = d + 1 == DEPLOYMENTS ? PODS - n : 1 + next() % 249;
        if (replicas > PODS - n)
            replicas = PODS - n;
        snprintf(names[d], sizeof(names[d]), "shop/deploy-%zu", d);
        for (size_t r = 0; r < replicas; r++, n++) {
            pods[n] = (struct tl_plan_pod){names[d], cpu, mem, rec_cpu, rec_mem, false};
            total_cpu += cpu;
            total_mem += mem;
        }
    }
    static const struct {
        const char *name;
        int64_t cpu, mem;
    } daemonsets[] = {{"kube-system/aws-node", 25, 40 * MIB},
                      {"kube-system/kube-proxy", 100, 128 * MIB},
                      {"monitoring/node-exporter", 50, 64 * MIB}};
    for (size_t i = 0; i < 3; i++)
        pods[n++] = (struct tl_plan_pod){
            daemonsets[i].name, daemonsets[i].cpu, daemonsets[i].mem, 0, 0, true};

    struct tl_allocatable_options options;
    struct tl_allocatable m5;
    tl_allocatable_options_defaults(&options);
    if (tl_allocatable_compute(tl_catalog_find("m5.4xlarge"), &options, &m5) != TL_OK)
        goto out;
    const int64_t node_cpu = m5.cpu_milli - 175; /* less the DaemonSets */
    const int64_t node_mem = m5.memory_bytes - 232 * MIB;
    int64_t by_cpu = (total_cpu + node_cpu - 1) / node_cpu;
    int64_t by_mem = (total_mem + node_mem - 1) / node_mem;
    size_t nnodes = (size_t)((by_cpu > by_mem ? by_cpu : by_mem) * 115 / 100);
    nodes = calloc(nnodes, sizeof(*nodes));
    if (nodes == NULL)
        goto out;
    for (size_t i = 0; i < nnodes; i++)
        nodes[i] = (struct tl_plan_node){"m5.4xlarge", TL_CAPACITY_ON_DEMAND};

    struct tl_plan_input input;
    tl_nodepool_plan_input_defaults(&input);
    input.region = "us-east-1";
    input.nodepool = &spec;
    input.pods = pods;
    input.npods = n;
    input.nodes = nodes;
    input.nnodes = nnodes;

    struct tl_plan_result result;
    clock_t start = clock();
    enum tl_err rc = tl_nodepool_plan_compute(&input, &result);
    clock_t end = clock();
    if (rc != TL_OK) {
        fprintf(stderr, "plan failed: %s\n", tl_strerror(rc));
        goto out;
    }
    printf("bench_planner: %zu pods (%zu DaemonSets), %zu current nodes, region %s\n", n - 3,
           (size_t)3, nnodes, input.region);
    printf("cpu_seconds: %.3f\n", (double)(end - start) / CLOCKS_PER_SEC);
    static char summary[8192];
    if (tl_nodepool_plan_summary(&result, summary, sizeof(summary)) != TL_OK)
        printf("(summary cut)\n");
    fputs(summary, stdout);
    tl_nodepool_plan_result_free(&result);
    status = 0;
out:
    tl_nodepool_spec_free(&spec);
    cJSON_Delete(json);
    free(nodes);
    free(names);
    free(pods);
    return status;
}
