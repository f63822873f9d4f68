/* scan: the `tailor scan` command (flags, listing, usage collection, advice, report) and the
 * read-only Kubernetes session and paged lists that the one-shot commands share. */
#ifndef TL_SCAN_H
#define TL_SCAN_H

#include <cjson/cJSON.h>
#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "error.h"
#include "kube_client.h"
#include "kubeconfig.h"
#include "labels.h"
#include "scan_output.h"

/* Exit codes of the one-shot commands. */
#define TL_EXIT_OK    0
#define TL_EXIT_FAIL  1 /* the cluster or Prometheus could not be read, or the output written */
#define TL_EXIT_USAGE 2 /* bad flags */

/* The flags of `tailor scan`. Strings are borrowed from argv; the rest is owned. */
struct tl_scan_options {
    const char *kubeconfig;
    const char *context;
    const char *prometheus_url;
    const char **prometheus_headers; /* owned array of borrowed "Name: value", NULL-terminated */
    size_t nprometheus_headers;
    const char *prometheus_token_file; /* bearer token for Prometheus, read at the start */
    char **namespaces;                 /* owned; NULL with -A (the default): every namespace */
    size_t nnamespaces;
    const char *selector_text; /* -l as given; NULL when absent */
    struct tl_selector selector;
    unsigned kinds;        /* enum tl_workload_kind bits */
    const char *history;   /* as given ("14d"), validated */
    int cpu_percentile;    /* 0: the policy default */
    int memory_percentile; /* 0: the policy default */
    int cpu_headroom;      /* percent; < 0: the policy default */
    int memory_headroom;   /* percent; < 0: the policy default */
    const char *region;    /* prices; validated against the catalog */
    enum tl_scan_format output;
    bool no_progress;
    bool help;
};

/*
 * Parses the arguments after "scan". On failure errbuf says which flag and why, nothing is left
 * allocated and *out is untouched; on success the caller frees with tl_scan_options_free. A
 * --help anywhere succeeds with help set (other flags are then not checked further).
 */
enum tl_err tl_scan_options_parse(int argc, char **argv, struct tl_scan_options *out, char *errbuf,
                                  size_t errlen);
void tl_scan_options_free(struct tl_scan_options *opts);
void tl_scan_usage(FILE *out);

/*
 * Parses a label selector in kubectl's syntax ("tier=web,env in (a,b),!canary,team,x!=y"; also
 * "==" and "notin") into *out, which the caller frees with tl_selector_free. An empty text
 * selects everything. The set-based "<" and ">" operators are refused (TL_EINVAL), as are keys
 * and values Kubernetes would refuse; errbuf says which part was wrong.
 */
enum tl_err tl_scan_selector_parse(const char *text, struct tl_selector *out, char *errbuf,
                                   size_t errlen);

/*
 * Splits a list of namespaces given once or several times as comma-separated text and adds
 * each new name to *list (owned; the caller frees every string and the array). TL_EINVAL, with
 * errbuf naming it, for a name that is not a DNS label.
 */
enum tl_err tl_scan_add_namespaces(const char *text, char ***list, size_t *count, char *errbuf,
                                   size_t errlen);

/* Runs the scan and prints the report on stdout; returns the exit code (TL_EXIT_*). */
int tl_scan_run(const struct tl_scan_options *opts);

/* ---- What the one-shot commands share ---- */

/* One flag of a one-shot command: "--name", and "-x" when short_name is not '\0'. */
struct tl_cli_flag {
    const char *name;
    char short_name;
    bool takes_value;
    const char *value_name; /* for the help: "--namespace NS" */
    const char *help;
};

/*
 * Reads the flag at argv[*i] (kubectl's forms: "--name value", "--name=value", "-x value",
 * "-xvalue", "-x" for flags without a value) and advances *i past it and its value. On TL_OK
 * *which is its index in flags and *value its value (borrowed from argv; NULL for flags without
 * one). TL_ENOTFOUND with *value set for an argument that is not a flag (a file name). TL_EINVAL
 * with errbuf saying why for an unknown flag, a missing value, or a value given to a flag that
 * takes none.
 */
enum tl_err tl_cli_flag_next(const struct tl_cli_flag *flags, size_t count, int argc, char **argv,
                             int *i, size_t *which, const char **value, char *errbuf,
                             size_t errlen);

/* Prints the flags, one a line, for a command's --help. */
void tl_cli_flags_usage(const struct tl_cli_flag *flags, size_t count, FILE *out);

/* A read-only session: configuration, credentials and client, all owned. */
struct tl_scan_session {
    struct tl_kube_config *config;
    struct tl_kube_creds *creds;
    struct tl_kube_client *client;
};

/*
 * Loads the kubeconfig (kubeconfig and context may be NULL: the usual search) and creates the
 * client on loop (borrowed). On failure errbuf is a message for the user that names the file or
 * what failed, and nothing is left allocated. Close with tl_scan_session_close.
 */
enum tl_err tl_scan_session_open(struct ev_loop *loop, const char *kubeconfig, const char *context,
                                 struct tl_scan_session *out, char *errbuf, size_t errlen);
void tl_scan_session_close(struct tl_scan_session *session);

/* Called for each item of a paged list; item borrowed for the call. Non-TL_OK stops the list. */
typedef enum tl_err (*tl_scan_item_fn)(void *arg, const cJSON *item);
/* Called once when the list ends; message (NULL on success) is for the user. */
typedef void (*tl_scan_list_done_fn)(void *arg, enum tl_err err, long code, const char *message);

/*
 * Lists every page of res in namespace ns (NULL: all namespaces) with an optional label
 * selector, 500 items a page, calling on_item for each item and done once at the end. session
 * and res are borrowed and must outlive the list; ns and selector are copied. A failure message
 * names the server and what was listed: "the API server at https://... answered 403 Forbidden
 * to listing deployments.apps in namespace shop: ...". A call that returns an error never calls
 * done.
 */
enum tl_err tl_scan_list(struct tl_scan_session *session, const struct tl_kube_resource *res,
                         const char *ns, const char *selector, tl_scan_item_fn on_item,
                         tl_scan_list_done_fn done, void *arg);

/* "http://host:9090" of a URL that may carry "user:password@": for messages and reports. */
void tl_scan_redact_url(const char *url, char *buf, size_t len);

#endif
