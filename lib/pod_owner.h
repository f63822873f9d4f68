/* pod_owner: which workload a pod belonged to, judged from the shape of its name alone. */
#ifndef TL_POD_OWNER_H
#define TL_POD_OWNER_H

#include <stdbool.h>
#include <stddef.h>

#include "policy.h"

/*
 * Prometheus history outlives pods, so the pods named in it can no longer be looked up; their
 * names still say who made them, because controllers name pods in fixed shapes:
 *
 *   Deployment   <name>-<pod-template-hash>-<5 chars>   (the ReplicaSet <name>-<hash> adds the
 *                                                        generated suffix)
 *   DaemonSet    <name>-<5 chars>
 *   StatefulSet  <name>-<ordinal>
 *
 * The 5 generated characters come from Kubernetes' alphabet "bcdfghjklmnpqrstvwxz2456789"
 * (k8s.io/apimachinery/pkg/util/rand: no vowels), the template hash is 1 to 10 of "456789bcdf"
 * (a uint32's decimal digits mapped into that alphabet), and an ordinal is a decimal number
 * without leading zeros. A generated
 * name whose base is longer than 58 characters is cut to 58 before the suffix is added (names
 * are at most 63), so the matcher also accepts that truncated form.
 *
 * Limits: a pod is attributed only to workloads in the list given, so pods of Jobs, CronJobs or
 * bare pods are left out; two workloads whose names differ by a hash-like segment (a Deployment
 * "web" and a DaemonSet "web-5d8f6c7b9") both fit "web-5d8f6c7b9-x2x4z", and the longer name
 * wins. kube-state-metrics' kube_pod_owner states the owner exactly and is the fallback where
 * names cannot be trusted (docs/metrics-sources.md).
 */

/* A workload a pod may belong to. name is borrowed by the functions that take it. */
struct tl_workload_ref {
    enum tl_workload_kind kind;
    const char *name;
};

/* "Deployment", "StatefulSet", "DaemonSet"; "?" for anything else. Static string. */
const char *tl_workload_kind_name(enum tl_workload_kind kind);

/* Whether pod has the name shape of a pod of this workload (see above). */
bool tl_pod_owner_matches(enum tl_workload_kind kind, const char *workload, const char *pod);

/* The workloads of one namespace, arranged so a pod's owner is found in a few lookups. */
struct tl_pod_owner_index;

/* Copies the names. Returns NULL on allocation failure. Caller frees with
 * tl_pod_owner_index_destroy. */
struct tl_pod_owner_index *tl_pod_owner_index_create(const struct tl_workload_ref *workloads,
                                                     size_t count);

void tl_pod_owner_index_destroy(struct tl_pod_owner_index *index);

/*
 * The position in the list given to tl_pod_owner_index_create of the workload pod belongs to,
 * in *out; false when none fits. When several fit, the longest name wins, then Deployment before
 * DaemonSet before StatefulSet, then the first in the list.
 */
bool tl_pod_owner_find(const struct tl_pod_owner_index *index, const char *pod, size_t *out);

#endif
