/* kubeconfig: where the API server is and how to reach it, from kubeconfig files or in-cluster. */
#ifndef TL_KUBECONFIG_H
#define TL_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* An exec credential plugin (client.authentication.k8s.io/v1 ExecCredential). */
struct tl_kube_exec {
    char *command;
    char **args; /* NULL-terminated */
    char **env;  /* NULL-terminated "NAME=value" entries added to the environment */
    char *api_version;
    bool interactive_never; /* interactiveMode: Never; we never give the plugin a terminal */
};

/*
 * One resolved connection: the cluster, user and namespace of the chosen context (or of the
 * in-cluster service account). Every string is owned by the struct; NULL when not set.
 */
struct tl_kube_config {
    char *source;       /* for messages: the file (or "in-cluster") it came from */
    char *context_name; /* NULL for in-cluster */
    char *server;       /* "https://host:port", no trailing slash */
    char *ca_file;
    char *ca_data; /* PEM bytes, decoded from base64 */
    size_t ca_data_len;
    bool insecure_skip_tls_verify;
    char *tls_server_name;
    char *proxy_url;
    char *token;
    char *token_file; /* re-read when it changes: bound tokens rotate */
    char *client_cert_file;
    char *client_key_file;
    char *client_cert_data; /* PEM */
    size_t client_cert_data_len;
    char *client_key_data; /* PEM */
    size_t client_key_data_len;
    struct tl_kube_exec *exec;
    char *namespace; /* context namespace, in-cluster namespace, or "default" */
};

/* How to find the configuration; every field may be NULL/false. Borrowed by tl_kube_config_load. */
struct tl_kube_config_options {
    const char *kubeconfig; /* --kubeconfig; wins over $KUBECONFIG */
    const char *context;    /* --context; default: current-context */
    bool in_cluster_first;  /* try the service account before kubeconfig files */
};

/*
 * Resolves the configuration: --kubeconfig, else $KUBECONFIG (several files joined by ':',
 * merged as kubectl does: the first file to set a map entry or current-context wins), else
 * in-cluster ($KUBERNETES_SERVICE_HOST/PORT and the service-account files), else ~/.kube/config.
 * On success *out is owned by the caller (tl_kube_config_destroy). On failure errbuf names the
 * file and field that was wrong.
 */
enum tl_err tl_kube_config_load(const struct tl_kube_config_options *opts,
                                struct tl_kube_config **out, char *errbuf, size_t errlen);

/* Same as tl_kube_config_load for one kubeconfig document held in memory (for tests and tools). */
enum tl_err tl_kube_config_parse(const char *yaml_text, size_t len, const char *source,
                                 const char *context, struct tl_kube_config **out, char *errbuf,
                                 size_t errlen);

void tl_kube_config_destroy(struct tl_kube_config *cfg);

#endif
