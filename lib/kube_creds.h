/* kube_creds: the credentials sent to the API server at run time, kept fresh on the loop. */
#ifndef TL_KUBE_CREDS_H
#define TL_KUBE_CREDS_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "kubeconfig.h"

struct ev_loop;
struct tl_kube_creds;

/* An exec plugin running longer than this is killed (with its process group). */
#define TL_KUBE_CREDS_EXEC_TIMEOUT 30.0
/* A plugin printing more than this on stdout is killed; its answer is refused. */
#define TL_KUBE_CREDS_EXEC_OUTPUT_MAX ((size_t)1 << 20)
/* A token file is stat()ed at most this often, and re-read only when it changed. */
#define TL_KUBE_CREDS_RECHECK_INTERVAL 5.0

/* Knobs with sensible defaults; a zero field takes the default. */
struct tl_kube_creds_options {
    double exec_timeout;           /* seconds; default TL_KUBE_CREDS_EXEC_TIMEOUT */
    double token_recheck_interval; /* seconds; default TL_KUBE_CREDS_RECHECK_INTERVAL; <0: always */
};

/*
 * Called on the loop after every asynchronous refresh of an exec credential, with TL_OK or the
 * reason it failed (the old credential is kept then). Not called for the first fetch.
 */
typedef void (*tl_kube_creds_cb)(struct tl_kube_creds *creds, enum tl_err result, void *arg);

/*
 * Prepares the credentials cfg describes: a static token, a token file, client certificate and
 * key (files or data), the CA bundle, or an exec plugin. cfg and loop are borrowed for the creds'
 * lifetime. Files are read now, and an exec plugin is run now, synchronously (the one time
 * anything here blocks, bounded by the exec timeout); its credential is then refreshed in the
 * background on loop before it expires. Returns NULL on failure with errbuf (may be NULL) saying
 * why, naming the file or the plugin. The caller frees with tl_kube_creds_destroy.
 */
struct tl_kube_creds *tl_kube_creds_create(const struct tl_kube_config *cfg, struct ev_loop *loop,
                                           char *errbuf, size_t errlen);

/* tl_kube_creds_create with options (borrowed for the call; NULL means all defaults). */
struct tl_kube_creds *tl_kube_creds_create_ex(const struct tl_kube_config *cfg,
                                              struct ev_loop *loop,
                                              const struct tl_kube_creds_options *opts,
                                              char *errbuf, size_t errlen);

/* Kills and reaps a running plugin, stops every watcher and frees creds; NULL is a no-op. */
void tl_kube_creds_destroy(struct tl_kube_creds *creds);

/*
 * The current bearer token, or NULL when the user has none (client certificates, anonymous).
 * For a token file this may re-read the file (a stat at most every recheck interval; a failed
 * re-read keeps the old token and logs a warning). Borrowed: valid until the next call into
 * creds or the next loop iteration, whichever comes first.
 */
const char *tl_kube_creds_token(struct tl_kube_creds *creds);

/*
 * PEM blobs for libcurl (CURLOPT_SSLCERT_BLOB, CURLOPT_SSLKEY_BLOB, CURLOPT_CAINFO_BLOB, which
 * copy them): the client certificate and key (from files, data, or the exec plugin, whose
 * certificates win) and the CA bundle (from certificate-authority-data or the file). Each returns
 * false, leaving the out-parameters alone, when there is none. Borrowed like the token.
 */
bool tl_kube_creds_client_cert(const struct tl_kube_creds *creds, const char **pem, size_t *len);
bool tl_kube_creds_client_key(const struct tl_kube_creds *creds, const char **pem, size_t *len);
bool tl_kube_creds_ca(const struct tl_kube_creds *creds, const char **pem, size_t *len);

/*
 * Counts changes of the token or client certificate: a client that copied any of them compares
 * this with the value it saw to know when to copy again (new TLS material means new handles).
 */
unsigned long tl_kube_creds_generation(const struct tl_kube_creds *creds);

/*
 * The server said 401: for an exec plugin start a refresh now (unless one is already running);
 * for a token file re-read it now, so the next tl_kube_creds_token has the new one. Never blocks
 * and never calls the refresh callback itself. A static token cannot be refreshed: no-op.
 * After it, tl_kube_creds_refreshing() says whether to wait for the callback before retrying.
 */
void tl_kube_creds_invalidate(struct tl_kube_creds *creds);

/* True from the start of a background refresh until just before its callback runs. */
bool tl_kube_creds_refreshing(const struct tl_kube_creds *creds);

/* Sets (or with cb NULL, clears) the refresh callback; arg is passed through, borrowed. */
void tl_kube_creds_on_refresh(struct tl_kube_creds *creds, tl_kube_creds_cb cb, void *arg);

/* ---- the pure parts, exposed for tests ---- */

/* What an exec plugin answered. Strings are owned; NULL when absent. */
struct tl_kube_exec_credential {
    char *token;
    char *client_cert; /* PEM */
    size_t client_cert_len;
    char *client_key; /* PEM */
    size_t client_key_len;
    double expiry; /* seconds since the epoch; 0 when the credential does not expire */
};

/*
 * Parses an ExecCredential (JSON, as the plugin printed it): kind ExecCredential, the apiVersion
 * the kubeconfig asked for, and a status with a token or a client certificate and key (or both).
 * A credential whose expirationTimestamp is at or before now (seconds since the epoch) is refused
 * with TL_EAUTH. On success *out is filled and owned by the caller
 * (tl_kube_exec_credential_clear); on failure errbuf says which field was wrong.
 */
enum tl_err tl_kube_exec_credential_parse(const char *json, size_t len, const char *api_version,
                                          double now, struct tl_kube_exec_credential *out,
                                          char *errbuf, size_t errlen);

/* Frees what cred owns and zeroes it; the struct itself is the caller's. */
void tl_kube_exec_credential_clear(struct tl_kube_exec_credential *cred);

/*
 * Parses an RFC 3339 date-time ("2024-05-01T12:00:00Z", "...T12:00:00.5+02:00"; 'T' and 'Z' in
 * either case) into seconds since the epoch. TL_EINVAL for anything else, including out-of-range
 * fields (month 13, February 30, hour 24).
 */
enum tl_err tl_kube_creds_parse_time(const char *text, double *out);

#endif
