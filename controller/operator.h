/* operator: the running controller's state, its informers and work queue, shared by reconcilers. */
#ifndef TL_OPERATOR_H
#define TL_OPERATOR_H

#include <ev.h>
#include <stdbool.h>

#include "catalog.h"
#include "informer.h"
#include "kube_client.h"
#include "kube_creds.h"
#include "kubeconfig.h"
#include "objects.h"
#include "options.h"
#include "recorder.h"
#include "strmap.h"
#include "workqueue.h"

/* Work queue keys: "w/NS/KIND/NAME" sizes one workload, "p/NS/NAME" writes one policy's status,
 * "n/NAME" plans one NodePool (nodepool_reconcile.h), "a" recomputes which policy sizes which
 * workload. */
#define TL_KEY_ASSIGN "a"

struct tl_usage_source; /* usage histograms by workload container; see usage_source.h */
struct tl_httpd;
struct tl_metrics;
struct tl_op_metrics;

struct tl_operator_stats {
    unsigned long reconciles;
    unsigned long reconcile_errors;
    unsigned long writes;
    unsigned long status_writes_skipped; /* desired status already in place */
};

struct tl_operator;

/* The argument a workload informer's projection and handlers get. */
struct tl_workload_ctx {
    struct tl_operator *op;
    enum tl_workload_kind kind;
};

struct tl_operator {
    struct ev_loop *loop;
    const struct tl_run_options *opts;
    struct tl_kube_config *config;
    struct tl_kube_creds *creds;
    struct tl_kube_client *client;

    struct tl_informer *namespaces;
    struct tl_informer *workloads[3]; /* Deployments, StatefulSets, DaemonSets */
    struct tl_informer *hpas;
    struct tl_informer *policies;
    struct tl_informer *recs;
    struct tl_informer *pods;
    struct tl_informer *pdbs;
    struct tl_informer *config_maps; /* the kill-switch ConfigMap in the operator's namespace */
    struct tl_informer *nodepools;   /* karpenter.sh/v1 NodePools (nodepool_reconcile.c) */
    struct tl_informer *nodes;       /* Nodes with a karpenter.sh/nodepool label */
    struct tl_workload_ctx workload_ctx[3];
    bool synced;

    struct tl_kube_resource workload_resources[3];
    struct tl_kube_resource rec_resource;
    struct tl_kube_resource hpa_resource;
    struct tl_kube_resource pod_resource;
    struct tl_kube_resource policy_resource;

    struct tl_workqueue *queue;
    struct tl_strmap *assignment;   /* "NS/KIND/NAME" -> owned "POLICY_NS/POLICY_NAME" */
    struct tl_strmap *region_rates; /* region -> owned struct tl_cost_rates */
    struct tl_usage_source *usage;  /* may be NULL: no metrics yet */
    struct tl_strmap *applying;     /* "NS/KIND/NAME" -> owned namespace, changes in flight */
    struct tl_recorder *recorder;
    struct tl_httpd *health_httpd;  /* /healthz, /readyz */
    struct tl_httpd *api_httpd;     /* /metrics, REST API, dashboard */
    struct tl_httpd *webhook_httpd; /* the admission webhook (webhook.c); NULL when off */
    struct tl_rest_api *rest_api;   /* rest_api.c: the REST API's own state; NULL when off */
    struct tl_metrics *metrics;
    struct tl_op_metrics *om;  /* http.c */
    struct tl_strmap *started; /* key -> owned double: when its reconcile began */

    struct tl_election *election; /* NULL without --leader-elect */
    bool leading;                 /* only the leader reconciles and writes */

    ev_signal sigint;
    ev_signal sigterm;
    ev_timer resync;
    bool stopping;
    struct tl_operator_stats stats;
};

/* Runs `tailor run` until SIGINT/SIGTERM; returns the process exit code. */
int tl_operator_run(const struct tl_run_options *opts);

/* Index of a workload kind in op->workloads. */
int tl_operator_kind_index(enum tl_workload_kind kind);

/* Queues a workload's reconcile. */
void tl_operator_enqueue_workload(struct tl_operator *op, const char *ns, const char *kind,
                                  const char *name);

/* Recomputes one workload's policy; true when it changed (old and new winners are queued). */
bool tl_operator_reassign(struct tl_operator *op, const char *ns, enum tl_workload_kind kind,
                          const char *name);

/* The cluster-wide kill switch: --disable-auto-apply, or autoApply: "false" in the ConfigMap. */
bool tl_operator_kill_switch(struct tl_operator *op);

/* Reconcilers (rec_reconcile.c, policy_reconcile.c): each calls tl_workqueue_done for key. */
void tl_reconcile_workload(struct tl_operator *op, const char *key);
void tl_reconcile_policy(struct tl_operator *op, const char *key);

/* Cost rates for a policy: its custom rates, else its region's from the catalog (cached). */
struct tl_cost_rates tl_operator_rates(struct tl_operator *op, const struct tl_policy *policy);

/* Ends a reconcile: done, and forget or requeue with backoff. */
void tl_operator_finish(struct tl_operator *op, const char *key, enum tl_err result);

#endif
