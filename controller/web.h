/* web: the operator's HTTP surface: health probes, /metrics, and the API server behind them. */
#ifndef TL_WEB_H
#define TL_WEB_H

#include <stdbool.h>

#include "error.h"

struct tl_operator;

/*
 * Starts the health server (--health-probe-bind-address: /healthz, /readyz) and the main one
 * (--metrics-bind-address: /metrics, the REST API and the dashboard); "0" disables either.
 * Registers the operator's metrics. TL_EIO when an address cannot be bound.
 */
enum tl_err tl_operator_http_start(struct tl_operator *op);
void tl_operator_http_stop(struct tl_operator *op);

/* Counts one reconcile that took `seconds`; kind is "workload", "policy" or "assign". */
void tl_operator_observe_reconcile(struct tl_operator *op, const char *kind, bool ok,
                                   double seconds);

/* Counts one remediation action: "apply", "rollback", "verified". */
void tl_operator_observe_action(struct tl_operator *op, const char *action);

/* Counts one Kubernetes API response (kube_client's observe hook); arg is the operator. */
void tl_operator_observe_request(void *arg, const char *method, long code);

#endif
