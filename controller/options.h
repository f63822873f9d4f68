/* options: the flags of `tailor run`, their defaults and their parsing. */
#ifndef TL_OPTIONS_H
#define TL_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "error.h"
#include "log.h"

/* Strings point into argv or the environment: borrowed for the program's life. */
struct tl_run_options {
    const char *kubeconfig;
    const char *context;
    const char *namespace; /* the operator's own: $POD_NAMESPACE, else tailor-system */
    bool leader_elect;
    const char *lease_name;
    const char *identity; /* $POD_NAME, else the host name */
    double lease_duration;
    double renew_deadline;
    double retry_period;
    const char *metrics_addr; /* /metrics, the REST API and the dashboard */
    const char *health_addr;  /* /healthz and /readyz */
    const char *api_auth;     /* "writes" (approvals need a token) or "reads" (everything) */
    enum tl_log_level log_level;
    enum tl_log_format log_format;
    double kube_qps;
    double kube_burst;
    double resync_period;
    const char *prometheus_url; /* for policies that name none */
    bool dry_run;
    bool disable_auto_apply;  /* the kill switch, as a flag */
    const char *webhook_addr; /* HTTPS admission webhook; "0" (default) disables */
    const char *webhook_cert_file;
    const char *webhook_key_file;
    const char *config_map; /* watched for autoApply: "false" */
    bool help;
};

/* Fills *out with the defaults, then applies argv (after the subcommand). On TL_EINVAL errbuf
 * names the flag: "--kube-api-qps: expected a positive number, got \"fast\"". */
enum tl_err tl_run_options_parse(int argc, char **argv, struct tl_run_options *out, char *errbuf,
                                 size_t errlen);

/* The flag reference printed by `tailor run --help`. */
void tl_run_options_usage(FILE *out);

#endif
