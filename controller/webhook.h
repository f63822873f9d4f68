/* webhook: the validating admission webhook for OptimizationPolicies (HTTPS, its own port). */
#ifndef TL_WEBHOOK_H
#define TL_WEBHOOK_H

#include <cjson/cJSON.h>

#include "error.h"

struct tl_operator;

#define TL_WEBHOOK_PATH "/validate/tailor.dev/v1alpha1/optimizationpolicies"

/*
 * The AdmissionReview answer (admission.k8s.io/v1) for a review of an OptimizationPolicy:
 * allowed when its spec parses as the controller parses it and its namespace may use what it
 * asks for (operator_ns: only there may a policy reach other namespaces, NodePools or a
 * credential Secret). A malformed review gets allowed=false with a message saying what was
 * wrong. Caller frees with cJSON_Delete; NULL when out of memory.
 */
cJSON *tl_webhook_review(const cJSON *review, const char *operator_ns);

/* Starts the HTTPS listener when --webhook-bind-address is set (not "0"). */
enum tl_err tl_webhook_start(struct tl_operator *op);
void tl_webhook_stop(struct tl_operator *op);

#endif
