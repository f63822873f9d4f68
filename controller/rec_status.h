/* rec_status: the status a Recommendation should have: advice, revision, phase, savings, display.
 */
#ifndef TL_REC_STATUS_H
#define TL_REC_STATUS_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "catalog.h"
#include "objects.h"
#include "policy.h"
#include "recommend.h"

/* Everything borrowed. advice[i] belongs to workload->containers[i]; NULL for a container the
 * policy excludes. */
struct tl_rec_input {
    const struct tl_workload *workload;
    const char *name; /* the workload's name */
    const struct tl_policy *policy;
    const struct tl_hpa *hpa; /* the HPA scaling this workload, or NULL */
    const struct tl_advice *const *advice;
    struct tl_cost_rates rates;
    const cJSON *previous;     /* the Recommendation's status as last seen, or NULL */
    int64_t approved_revision; /* spec.approval.approvedRevision, 0 when none */
    int64_t generation;        /* the Recommendation's metadata.generation */
    double now;                /* seconds since the epoch, for new conditions */
    double analyzed_at;        /* when the usage behind the advice was collected; 0: never */
};

/*
 * Builds the whole desired status (caller frees with cJSON_Delete; NULL when out of memory).
 * Pure: it only reads its inputs. The revision moves only when the advice changes by at least
 * the policy's minChangePercent (or a container comes or goes), and a revision's recommended
 * values never change, so an approval always means exactly what the approver saw. History,
 * verification and the lastTransitionTime of unchanged conditions are carried over.
 */
cJSON *tl_rec_status_build(const struct tl_rec_input *in);

/* {requests: {cpu, memory}, limits: {cpu, memory}} with unset values left out; caller frees
 * with cJSON_Delete; NULL when out of memory. */
cJSON *tl_resources_to_json(const struct tl_resources *r);
/* Reads such an object back (missing values are 0). */
void tl_resources_from_json(const cJSON *obj, struct tl_resources *out);
/* The largest relative change, in percent, of the four values from a to b; a value that
 * appears or vanishes counts as a 100% change. */
double tl_resources_change_percent(const struct tl_resources *a, const struct tl_resources *b);

/* Formats cores as a quantity ("250m", "2") and bytes ("640Mi", "1536"); buf >= 40 bytes. */
void tl_format_cpu(double cores, char *buf, size_t len);
void tl_format_memory(double bytes, char *buf, size_t len);

/* RFC 3339 UTC with seconds ("2026-11-21T10:00:00Z"); buf >= 21 bytes. */
void tl_format_time(double epoch, char *buf, size_t len);

#endif
