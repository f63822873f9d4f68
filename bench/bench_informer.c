/*
 * bench_informer: what it costs to take 50,000 pods into an informer cache.
 *
 * Builds a PodList of realistic pods (labels, annotations, owner reference, two containers with
 * requests and limits, conditions, container statuses; about 3 KiB of JSON each), then times:
 *   1. parsing it in pages of 500, as the informer's list does;
 *   2. projecting each pod into the compact struct below and inserting it into the store;
 *   3. the same pods as watch events through the watch decoder in 64 KiB chunks, applied as
 *      updates (project + upsert + free the old item);
 * and prints the cache's memory per object. Usage: bench_informer [pods]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "kube_store.h"
#include "quantity.h"
#include "watch_decoder.h"

/* The example projection (what a rightsizing controller reads from a Pod). */
struct container_proj {
    char name[32];
    int64_t cpu_request_milli, cpu_limit_milli;
    int64_t memory_request, memory_limit;
};

struct pod_proj {
    char node[48];
    char phase; /* 'P'ending, 'R'unning, 'S'ucceeded, 'F'ailed, 'U'nknown */
    unsigned char ncontainers;
    struct container_proj containers[]; /* ncontainers */
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const cJSON *at(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static int64_t quantity(const cJSON *list, const char *key, bool milli)
{
    const cJSON *q = at(list, key);
    struct tl_quantity parsed;
    int64_t v = 0;
    if (!cJSON_IsString(q) || tl_quantity_parse(q->valuestring, &parsed, NULL, 0) != TL_OK)
        return -1;
    if ((milli ? tl_quantity_milli(&parsed, &v) : tl_quantity_value(&parsed, &v)) != TL_OK)
        return -1;
    return v;
}

static enum tl_err project_pod(void *arg, const cJSON *pod, void **out)
{
    const cJSON *containers = at(at(pod, "spec"), "containers");
    int n = cJSON_GetArraySize(containers);
    if (n > 255)
        n = 255;
    struct pod_proj *p = calloc(1, sizeof(*p) + (size_t)n * sizeof(struct container_proj));
    if (!p)
        return TL_ENOMEM;
    const cJSON *node = at(at(pod, "spec"), "nodeName");
    snprintf(p->node, sizeof(p->node), "%s", cJSON_IsString(node) ? node->valuestring : "");
    const cJSON *phase = at(at(pod, "status"), "phase");
    p->phase = cJSON_IsString(phase) ? phase->valuestring[0] : 'U';
    const cJSON *c;
    cJSON_ArrayForEach(c, containers)
    {
        if (p->ncontainers == n)
            break;
        struct container_proj *cp = &p->containers[p->ncontainers++];
        const cJSON *name = at(c, "name");
        snprintf(cp->name, sizeof(cp->name), "%s", cJSON_IsString(name) ? name->valuestring : "");
        const cJSON *res = at(c, "resources");
        cp->cpu_request_milli = quantity(at(res, "requests"), "cpu", true);
        cp->cpu_limit_milli = quantity(at(res, "limits"), "cpu", true);
        cp->memory_request = quantity(at(res, "requests"), "memory", false);
        cp->memory_limit = quantity(at(res, "limits"), "memory", false);
    }
    *out = p;
    return TL_OK;
}

static size_t proj_bytes;

static void free_proj(void *arg, void *proj)
{
    free(proj);
}

static int pod_json(char *buf, size_t len, int i, int rv)
{
    return snprintf(
        buf, len,
        "{\"metadata\":{\"name\":\"web-%d-7d9f8c6b5-x%05d\",\"generateName\":\"web-%d-7d9f8c6b5-\","
        "\"namespace\":\"team-%d\",\"uid\":\"3f1c2a9e-8d7b-4c6a-9e5f-%012d\","
        "\"resourceVersion\":\"%d\",\"creationTimestamp\":\"2024-05-01T12:00:00Z\","
        "\"labels\":{\"app\":\"web-%d\",\"pod-template-hash\":\"7d9f8c6b5\",\"tier\":\"frontend\","
        "\"app.kubernetes.io/part-of\":\"shop\"},\"annotations\":{\"prometheus.io/scrape\":"
        "\"true\",\"prometheus.io/port\":\"9090\",\"kubectl.kubernetes.io/restartedAt\":"
        "\"2024-05-01T11:59:00Z\"},\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":"
        "\"ReplicaSet\",\"name\":\"web-%d-7d9f8c6b5\",\"uid\":\"aa11bb22-cc33-dd44-ee55-%012d\","
        "\"controller\":true,\"blockOwnerDeletion\":true}]},"
        "\"spec\":{\"nodeName\":\"ip-10-0-%d-%d.eu-west-1.compute.internal\","
        "\"serviceAccountName\":"
        "\"default\",\"containers\":[{\"name\":\"web\",\"image\":\"registry.example.com/shop/"
        "web:1.42.0\",\"ports\":[{\"containerPort\":8080,\"protocol\":\"TCP\"}],\"env\":[{\"name\":"
        "\"LOG_LEVEL\",\"value\":\"info\"},{\"name\":\"POD_NAME\",\"valueFrom\":{\"fieldRef\":{"
        "\"fieldPath\":\"metadata.name\"}}}],\"resources\":{\"requests\":{\"cpu\":\"250m\","
        "\"memory\":\"512Mi\"},\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}},\"readinessProbe\":{"
        "\"httpGet\":{\"path\":\"/healthz\",\"port\":8080},\"periodSeconds\":10}},{\"name\":"
        "\"sidecar\",\"image\":\"registry.example.com/proxy:2.3\",\"resources\":{\"requests\":{"
        "\"cpu\":\"50m\",\"memory\":\"64Mi\"},\"limits\":{\"memory\":\"128Mi\"}}}],"
        "\"tolerations\":[{\"key\":\"node.kubernetes.io/not-ready\",\"operator\":\"Exists\","
        "\"effect\":\"NoExecute\",\"tolerationSeconds\":300}]},"
        "\"status\":{\"phase\":\"Running\",\"hostIP\":\"10.0.%d.%d\",\"podIP\":\"10.1.%d.%d\","
        "\"startTime\":\"2024-05-01T12:00:01Z\",\"qosClass\":\"Burstable\",\"conditions\":["
        "{\"type\":\"Initialized\",\"status\":\"True\",\"lastTransitionTime\":"
        "\"2024-05-01T12:00:01Z\"},{\"type\":\"Ready\",\"status\":\"True\",\"lastTransitionTime\":"
        "\"2024-05-01T12:00:09Z\"},{\"type\":\"ContainersReady\",\"status\":\"True\","
        "\"lastTransitionTime\":\"2024-05-01T12:00:09Z\"},{\"type\":\"PodScheduled\",\"status\":"
        "\"True\",\"lastTransitionTime\":\"2024-05-01T12:00:00Z\"}],\"containerStatuses\":[{"
        "\"name\":\"web\",\"ready\":true,\"restartCount\":0,\"image\":\"registry.example.com/shop/"
        "web:1.42.0\",\"imageID\":\"registry.example.com/shop/web@sha256:0123456789abcdef0123456789"
        "abcdef0123456789abcdef0123456789abcdef\",\"containerID\":\"containerd://%064d\",\"state\":"
        "{\"running\":{\"startedAt\":\"2024-05-01T12:00:05Z\"}}},{\"name\":\"sidecar\",\"ready\":"
        "true,\"restartCount\":1,\"state\":{\"running\":{\"startedAt\":\"2024-05-01T12:00:06Z\"}}}"
        "]}}",
        i / 10, i, i / 10, i % 200, i, rv, i / 10, i / 10, i / 10, i % 250, i % 200, i % 250,
        i % 200, i / 250 % 250, i % 250, i);
}

static size_t max_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (size_t)ru.ru_maxrss;
}

struct watch_ctx {
    struct tl_kube_store *store;
    size_t applied;
};

static enum tl_err apply(void *arg, const char *type, cJSON *object)
{
    struct watch_ctx *w = arg;
    struct tl_kube_store_meta meta;
    void *proj = NULL;
    if (tl_kube_store_meta_from_json(object, &meta) != TL_OK ||
        project_pod(NULL, object, &proj) != TL_OK)
        return TL_EINVAL;
    struct tl_kube_store_item *old = NULL;
    enum tl_err result = tl_kube_store_upsert(w->store, &meta, proj, &old, NULL);
    tl_kube_store_item_free(w->store, old);
    w->applied++;
    return result;
}

int main(int argc, char **argv)
{
    int pods = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 50000;
    if (pods <= 0)
        pods = 50000;
    const int page = 500;
    size_t rss_start = max_rss_kib();

    /* The recorded list, as pages of 500 (each a complete PodList document). */
    int status = 1;
    struct tl_kube_store *store = NULL;
    struct tl_watch_decoder *dec = NULL;
    char *stream = NULL;
    int pages = (pods + page - 1) / page;
    char **docs = calloc((size_t)pages, sizeof(char *));
    size_t *doc_len = calloc((size_t)pages, sizeof(size_t));
    size_t total_bytes = 0;
    char *one = malloc(8192);
    if (!docs || !doc_len || !one)
        goto out;
    for (int p = 0; p < pages; p++) {
        size_t cap = (size_t)page * 4096 + 256, len = 0;
        docs[p] = malloc(cap);
        if (!docs[p])
            goto out;
        len += (size_t)snprintf(docs[p], cap,
                                "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{"
                                "\"resourceVersion\":\"123456\"},\"items\":[");
        for (int i = p * page; i < (p + 1) * page && i < pods; i++) {
            int n = pod_json(one, 8192, i, 1000 + i);
            if (n < 0 || n >= 8192 || len + (size_t)n + 4 > cap) {
                fprintf(stderr, "pod document too large\n");
                goto out;
            }
            if (i > p * page)
                docs[p][len++] = ',';
            memcpy(docs[p] + len, one, (size_t)n);
            len += (size_t)n;
        }
        len += (size_t)snprintf(docs[p] + len, cap - len, "]}");
        doc_len[p] = len;
        total_bytes += len;
    }

    /* 1 + 2: parse pages, project, insert. */
    store = tl_kube_store_create(free_proj, NULL);
    if (!store)
        goto out;
    double parse_s = 0, project_s = 0, free_s = 0;
    for (int p = 0; p < pages; p++) {
        double t0 = now();
        cJSON *list = cJSON_ParseWithLength(docs[p], doc_len[p]);
        double t1 = now();
        const cJSON *item;
        cJSON_ArrayForEach(item, at(list, "items"))
        {
            struct tl_kube_store_meta meta;
            void *proj = NULL;
            if (tl_kube_store_meta_from_json(item, &meta) != TL_OK ||
                project_pod(NULL, item, &proj) != TL_OK ||
                tl_kube_store_upsert(store, &meta, proj, NULL, NULL) != TL_OK) {
                fprintf(stderr, "projection failed\n");
                cJSON_Delete(list);
                goto out;
            }
            proj_bytes += sizeof(struct pod_proj) +
                          ((struct pod_proj *)proj)->ncontainers * sizeof(struct container_proj);
        }
        double t2 = now();
        cJSON_Delete(list);
        parse_s += t1 - t0;
        project_s += t2 - t1;
        free_s += now() - t2;
    }
    size_t cached = tl_kube_store_size(store);
    size_t overhead = tl_kube_store_overhead(store);
    size_t rss_cache = max_rss_kib();

    /* 3: the same pods as MODIFIED watch events, through the decoder in 64 KiB chunks. */
    size_t stream_cap = total_bytes + (size_t)pods * 64, stream_len = 0;
    stream = malloc(stream_cap);
    if (!stream)
        goto out;
    for (int i = 0; i < pods; i++) {
        stream_len += (size_t)snprintf(stream + stream_len, stream_cap - stream_len,
                                       "{\"type\":\"MODIFIED\",\"object\":");
        int n = pod_json(stream + stream_len, stream_cap - stream_len, i, 200000 + i);
        stream_len += (size_t)n;
        stream_len += (size_t)snprintf(stream + stream_len, stream_cap - stream_len, "}\n");
    }
    struct watch_ctx w = {.store = store};
    dec = tl_watch_decoder_create(0, apply, &w);
    if (!dec)
        goto out;
    double t3 = now();
    for (size_t off = 0; off < stream_len; off += 65536) {
        size_t n = stream_len - off < 65536 ? stream_len - off : 65536;
        if (tl_watch_decoder_feed(dec, stream + off, n) != TL_OK) {
            fprintf(stderr, "decoder failed\n");
            goto out;
        }
    }
    double watch_s = now() - t3;

    printf("pods: %d in %d pages of %d; list JSON %.1f MiB (%.0f bytes/pod)\n", pods, pages, page,
           (double)total_bytes / (1 << 20), (double)total_bytes / pods);
    printf("list: parse %.3f s (%.1f us/pod), project+insert %.3f s (%.1f us/pod), freeing the "
           "parsed pages %.3f s; total %.3f s\n",
           parse_s, parse_s * 1e6 / pods, project_s, project_s * 1e6 / pods, free_s,
           parse_s + project_s + free_s);
    printf("watch: %zu MODIFIED events decoded+projected+applied in %.3f s (%.1f us/event, "
           "%.0f MiB/s)\n",
           w.applied, watch_s, watch_s * 1e6 / (double)w.applied,
           (double)stream_len / (1 << 20) / watch_s);
    printf("cache: %zu objects; store bookkeeping %zu bytes (%.0f/object, identity strings "
           "included); projections %zu bytes (%.0f/object, malloc overhead excluded)\n",
           cached, overhead, (double)overhead / (double)cached, proj_bytes,
           (double)proj_bytes / (double)cached);
    printf("max RSS: %zu KiB at start, %zu KiB with the cache built (the list pages, %zu KiB, are "
           "held by the benchmark itself)\n",
           rss_start, rss_cache, total_bytes / 1024);

    status = 0;
out:
    tl_watch_decoder_destroy(dec);
    tl_kube_store_destroy(store);
    free(stream);
    for (int p = 0; docs && p < pages; p++)
        free(docs[p]);
    free(docs);
    free(doc_len);
    free(one);
    return status;
}
