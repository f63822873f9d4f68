#include "options.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "duration.h"

enum flag_type { FLAG_STRING, FLAG_BOOL, FLAG_NUMBER, FLAG_DURATION, FLAG_LEVEL, FLAG_FORMAT };

struct flag {
    const char *name;
    enum flag_type type;
    size_t offset;
    const char *help;
};

#define F(name, type, field, help)                                                                 \
    {                                                                                              \
        name, type, offsetof(struct tl_run_options, field), help                                   \
    }

static const struct flag flags[] = {
    F("kubeconfig", FLAG_STRING, kubeconfig, "kubeconfig file (default: $KUBECONFIG, in-cluster)"),
    F("context", FLAG_STRING, context, "kubeconfig context (default: current-context)"),
    F("namespace", FLAG_STRING, namespace,
      "the operator's namespace (default: $POD_NAMESPACE "
      "or tailor-system)"),
    F("leader-elect", FLAG_BOOL, leader_elect, "elect a leader with a Lease; only it writes"),
    F("leader-elect-lease-name", FLAG_STRING, lease_name, "Lease name (default tailor-leader)"),
    F("leader-elect-identity", FLAG_STRING, identity,
      "identity in the Lease (default: $POD_NAME "
      "or host name)"),
    F("leader-elect-lease-duration", FLAG_DURATION, lease_duration, "default 15s"),
    F("leader-elect-renew-deadline", FLAG_DURATION, renew_deadline, "default 10s"),
    F("leader-elect-retry-period", FLAG_DURATION, retry_period, "default 2s"),
    F("metrics-bind-address", FLAG_STRING, metrics_addr,
      "/metrics, REST API and dashboard (default :8080; \"0\" disables)"),
    F("health-probe-bind-address", FLAG_STRING, health_addr,
      "/healthz and /readyz (default :8081; \"0\" disables)"),
    F("api-auth", FLAG_STRING, api_auth,
      "which REST API calls need a bearer token: writes (approvals) or reads (all; default "
      "writes)"),
    F("log-level", FLAG_LEVEL, log_level, "debug, info, warn or error (default info)"),
    F("log-format", FLAG_FORMAT, log_format, "text or json (default text)"),
    F("kube-api-qps", FLAG_NUMBER, kube_qps, "client-side write rate limit (default 20)"),
    F("kube-api-burst", FLAG_NUMBER, kube_burst, "client-side write burst (default 30)"),
    F("resync-period", FLAG_DURATION, resync_period,
      "re-check everything this often (default "
      "10m)"),
    F("prometheus-url", FLAG_STRING, prometheus_url, "Prometheus for policies that name none"),
    F("dry-run", FLAG_BOOL, dry_run, "log what would be written to workloads; change none"),
    F("disable-auto-apply", FLAG_BOOL, disable_auto_apply,
      "kill switch: no automatic change to any workload (also autoApply: \"false\" in the "
      "ConfigMap)"),
    F("webhook-bind-address", FLAG_STRING, webhook_addr,
      "validating admission webhook for policies, HTTPS (default \"0\": off)"),
    F("webhook-cert-file", FLAG_STRING, webhook_cert_file, "the webhook's certificate (PEM)"),
    F("webhook-key-file", FLAG_STRING, webhook_key_file, "the webhook's private key (PEM)"),
    F("config-map", FLAG_STRING, config_map,
      "ConfigMap with the kill switch (default "
      "tailor-config)"),
    F("help", FLAG_BOOL, help, "show this help"),
};

#undef F

static void defaults(struct tl_run_options *o)
{
    memset(o, 0, sizeof(*o));
    const char *ns = getenv("POD_NAMESPACE");
    o->namespace = ns && *ns ? ns : "tailor-system";
    const char *pod = getenv("POD_NAME");
    o->identity = pod && *pod ? pod : NULL;
    o->lease_name = "tailor-leader";
    o->lease_duration = 15;
    o->renew_deadline = 10;
    o->retry_period = 2;
    o->metrics_addr = ":8080";
    o->health_addr = ":8081";
    o->api_auth = "writes";
    o->log_level = TL_LOG_INFO;
    o->log_format = TL_LOG_TEXT;
    o->kube_qps = 20;
    o->kube_burst = 30;
    o->resync_period = 600;
    o->config_map = "tailor-config";
    o->webhook_addr = "0";
}

static enum tl_err set_flag(const struct flag *f, const char *value, struct tl_run_options *o,
                            char *errbuf, size_t errlen)
{
    char *field = (char *)o + f->offset;
    switch (f->type) {
    case FLAG_STRING:
        *(const char **)(void *)field = value;
        return TL_OK;
    case FLAG_BOOL:
        if (value == NULL || strcmp(value, "true") == 0) {
            *(bool *)(void *)field = true;
            return TL_OK;
        }
        if (strcmp(value, "false") == 0) {
            *(bool *)(void *)field = false;
            return TL_OK;
        }
        snprintf(errbuf, errlen, "--%s: expected true or false, got \"%s\"", f->name, value);
        return TL_EINVAL;
    case FLAG_NUMBER: {
        char *end = NULL;
        errno = 0;
        double v = strtod(value, &end);
        if (end == value || *end != '\0' || errno != 0 || !(v > 0) || !isfinite(v)) {
            snprintf(errbuf, errlen, "--%s: expected a positive number, got \"%s\"", f->name,
                     value);
            return TL_EINVAL;
        }
        *(double *)(void *)field = v;
        return TL_OK;
    }
    case FLAG_DURATION: {
        int64_t ms = 0;
        if (tl_duration_parse(value, &ms) != TL_OK || ms <= 0) {
            snprintf(errbuf, errlen, "--%s: expected a duration such as \"15s\", got \"%s\"",
                     f->name, value);
            return TL_EINVAL;
        }
        *(double *)(void *)field = (double)ms / 1000;
        return TL_OK;
    }
    case FLAG_LEVEL:
        if (tl_log_level_parse(value, (enum tl_log_level *)(void *)field) != TL_OK) {
            snprintf(errbuf, errlen, "--%s: expected debug, info, warn or error, got \"%s\"",
                     f->name, value);
            return TL_EINVAL;
        }
        return TL_OK;
    case FLAG_FORMAT:
        if (tl_log_format_parse(value, (enum tl_log_format *)(void *)field) != TL_OK) {
            snprintf(errbuf, errlen, "--%s: expected text or json, got \"%s\"", f->name, value);
            return TL_EINVAL;
        }
        return TL_OK;
    }
    return TL_EINVAL;
}

enum tl_err tl_run_options_parse(int argc, char **argv, struct tl_run_options *out, char *errbuf,
                                 size_t errlen)
{
    struct tl_run_options o;
    defaults(&o);
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0)
            arg = "--help";
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(errbuf, errlen, "unexpected argument \"%s\"", arg);
            return TL_EINVAL;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const struct flag *f = NULL;
        for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]) && !f; k++) {
            if (strlen(flags[k].name) == name_len && strncmp(flags[k].name, name, name_len) == 0)
                f = &flags[k];
        }
        if (f == NULL) {
            snprintf(errbuf, errlen, "unknown flag \"--%.*s\"", (int)name_len, name);
            return TL_EINVAL;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (value == NULL && f->type != FLAG_BOOL) {
            if (i + 1 >= argc) {
                snprintf(errbuf, errlen, "--%s: needs a value", f->name);
                return TL_EINVAL;
            }
            value = argv[++i];
        }
        enum tl_err result = set_flag(f, value, &o, errbuf, errlen);
        if (result != TL_OK)
            return result;
    }
    if (strcmp(o.api_auth, "writes") != 0 && strcmp(o.api_auth, "reads") != 0) {
        snprintf(errbuf, errlen, "--api-auth: expected reads or writes, got \"%s\"", o.api_auth);
        return TL_EINVAL;
    }
    if (o.renew_deadline >= o.lease_duration || o.retry_period >= o.renew_deadline) {
        snprintf(errbuf, errlen,
                 "leader election needs retry-period < renew-deadline < "
                 "lease-duration");
        return TL_EINVAL;
    }
    if (strcmp(o.webhook_addr, "0") != 0 && (!o.webhook_cert_file || !o.webhook_key_file)) {
        snprintf(errbuf, errlen,
                 "--webhook-bind-address needs --webhook-cert-file and "
                 "--webhook-key-file: the API server calls webhooks over HTTPS");
        return TL_EINVAL;
    }
    *out = o;
    return TL_OK;
}

void tl_run_options_usage(FILE *out)
{
    fputs("Usage: tailor run [flags]\n\nRuns the operator: watches OptimizationPolicies and "
          "workloads, learns from usage history, writes Recommendations.\n\nFlags:\n",
          out);
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        fprintf(out, "  --%-30s %s\n", flags[i].name, flags[i].help);
}
