/* kubeconfig: where the API server is and how to reach it, from kubeconfig files or in-cluster. */
#ifndef TL_KUBECONFIG_H
#define TL_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* A kubeconfig file (or a file it names: CA, certificate, key, token) larger than this is refused.
 */
#define TL_KUBE_CONFIG_FILE_MAX ((size_t)4 << 20)
/* Where a pod finds its service-account token, CA bundle and namespace. */
#define TL_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* interactiveMode of an exec plugin. Tailor never gives a plugin a terminal. */
enum tl_kube_exec_interactive {
    TL_KUBE_EXEC_NEVER,
    TL_KUBE_EXEC_IF_AVAILABLE,
};

/* An exec credential plugin (client.authentication.k8s.io ExecCredential, v1 or v1beta1). */
struct tl_kube_exec {
    char *command; /* a name looked up in $PATH, or a path (relative ones resolved already) */
    char **args;   /* NULL-terminated, never NULL; args[0] is the first argument, not the command */
    char **env;    /* NULL-terminated "NAME=value" entries added to the environment, never NULL */
    char *api_version; /* client.authentication.k8s.io/v1 or /v1beta1 */
    enum tl_kube_exec_interactive interactive_mode;
    bool provide_cluster_info; /* pass the cluster in KUBERNETES_EXEC_INFO */
    char *install_hint;        /* shown when the command cannot be run; NULL when not set */
    char *cluster_config;      /* JSON text of the cluster's client.authentication.k8s.io/exec
                                  extension, passed as spec.cluster.config; NULL when absent */
};

/*
 * One resolved connection: the cluster, user and namespace of the chosen context (or of the
 * in-cluster service account). Every string is owned by the struct; NULL when not set. Paths are
 * already resolved against the directory of the kubeconfig file that named them.
 */
struct tl_kube_config {
    char *source; /* for messages: the kubeconfig file defining the context, or "in-cluster" */
    char *context_name; /* NULL for in-cluster */
    char *server;       /* "https://host:port" (maybe with a path prefix), no trailing slash */
    char *ca_file;
    char *ca_data; /* PEM bytes, decoded from base64; NUL-terminated past ca_data_len */
    size_t ca_data_len;
    bool insecure_skip_tls_verify;
    char *tls_server_name;
    char *proxy_url;
    char *token;      /* a static token; with token_file, the fallback if the file is unreadable */
    char *token_file; /* re-read when it changes: bound tokens rotate */
    char *client_cert_file;
    char *client_key_file;
    char *client_cert_data; /* PEM, NUL-terminated past the length */
    size_t client_cert_data_len;
    char *client_key_data; /* PEM, NUL-terminated past the length */
    size_t client_key_data_len;
    struct tl_kube_exec *exec;
    char *namespace; /* context namespace, in-cluster namespace, or "default" */
};

/* How to find the configuration; every field may be NULL/false. Borrowed by tl_kube_config_load. */
struct tl_kube_config_options {
    const char *kubeconfig; /* --kubeconfig; wins over everything else */
    const char *context;    /* --context; default: current-context */
    bool in_cluster_first;  /* try the service account before $KUBECONFIG and ~/.kube/config */
    /* The service-account directory; default $TAILOR_SA_DIR, then TL_KUBE_SA_DIR. */
    const char *service_account_dir;
};

/*
 * Resolves the configuration, in this order:
 *   1. --kubeconfig (opts->kubeconfig): that one file, which must exist;
 *   2. with in_cluster_first, the in-cluster service account when $KUBERNETES_SERVICE_HOST is set;
 *   3. $KUBECONFIG: several files joined by ':', merged as kubectl does (the first file to define
 *      a named cluster, user or context wins; the first non-empty current-context wins); missing
 *      files are skipped, but at least one must exist;
 *   4. the in-cluster service account ($KUBERNETES_SERVICE_HOST/_PORT and its token, ca.crt and
 *      namespace files), unless a context was asked for;
 *   5. ~/.kube/config.
 * Every file read is checked whole (as kubectl decodes it), the chosen context's cluster and user
 * also for meaning: a missing server, a user that sets two ways to give a certificate, or one
 * that asks for something Tailor does not do (auth-provider, username/password, impersonation)
 * is an error rather than silently ignored.
 * On success *out is owned by the caller (tl_kube_config_destroy). On failure errbuf (may be
 * NULL) names the file and the field: "kubeconfig /x: users[0].user.token: expected a string".
 * TL_ENOTFOUND when no configuration exists or the context is unknown, TL_EIO when a file cannot
 * be read, TL_EINVAL when one is malformed, TL_ETOOBIG past TL_KUBE_CONFIG_FILE_MAX.
 */
enum tl_err tl_kube_config_load(const struct tl_kube_config_options *opts,
                                struct tl_kube_config **out, char *errbuf, size_t errlen);

/*
 * Same as tl_kube_config_load for one kubeconfig document held in memory (for tests, tools and
 * fuzzing). source (may be NULL) names it in messages, and relative paths are resolved against
 * its directory. context (may be NULL) overrides current-context.
 */
enum tl_err tl_kube_config_parse(const char *yaml_text, size_t len, const char *source,
                                 const char *context, struct tl_kube_config **out, char *errbuf,
                                 size_t errlen);

/* Frees cfg and everything it owns; NULL is a no-op. */
void tl_kube_config_destroy(struct tl_kube_config *cfg);

/*
 * Reads a whole file named by the configuration (a kubeconfig, CA bundle, certificate, key or
 * token), refusing more than cap bytes (TL_ETOOBIG). On success *out holds *len bytes plus a NUL
 * the length does not count; the caller frees it. TL_ENOTFOUND when the file does not exist,
 * TL_EIO for other failures (errno is left set).
 */
enum tl_err tl_kube_config_read_file(const char *path, size_t cap, char **out, size_t *len);

#endif
