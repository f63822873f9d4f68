/* Tests for kube_creds: RFC 3339 and ExecCredential parsing, token files, TLS material, and real
 * exec plugins (shell scripts) run at start-up and refreshed on the loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <ev.h>

#include "kube_creds.h"

#define EXEC_V1 "client.authentication.k8s.io/v1"

struct env {
    char dir[256];
    char err[1024];
    struct tl_kube_config *cfg;
    struct tl_kube_creds *creds;
    struct ev_loop *loop;
    /* what the refresh callback saw */
    int calls;
    enum tl_err result;
    char token[256];
    bool guard_fired;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    if (!e)
        return -1;
    const char *tmp = getenv("TMPDIR");
    (void)snprintf(e->dir, sizeof(e->dir), "%s/tl_creds_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(e->dir))
        return -1;
    e->loop = EV_DEFAULT;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    tl_kube_creds_destroy(e->creds);
    tl_kube_config_destroy(e->cfg);
    if (e->loop != EV_DEFAULT)
        ev_loop_destroy(e->loop);
    char cmd[300];
    (void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
        return -1;
    free(e);
    return 0;
}

static void path_in(const struct env *e, const char *name, char *buf, size_t len)
{
    (void)snprintf(buf, len, "%s/%s", e->dir, name);
}

static void write_file(const struct env *e, const char *name, const char *text, mode_t mode)
{
    char path[512];
    path_in(e, name, path, sizeof(path));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static char *read_back(const struct env *e, const char *name)
{
    char path[512];
    path_in(e, name, path, sizeof(path));
    char *text = NULL;
    size_t len = 0;
    if (tl_kube_config_read_file(path, 1 << 20, &text, &len) != TL_OK)
        return NULL;
    return text;
}

/* A kubeconfig in the scratch directory whose one user has the given body. */
static void make_cfg(struct env *e, const char *user_yaml)
{
    char text[4096];
    char source[512];
    path_in(e, "config", source, sizeof(source));
    (void)snprintf(text, sizeof(text),
                   "current-context: c\n"
                   "clusters:\n- name: k\n  cluster:\n    server: https://k.example.com\n"
                   "    certificate-authority-data: Q0EtUEVN\n" /* "CA-PEM" */
                   "users:\n- name: u\n  user:\n%s"
                   "contexts:\n- name: c\n  context: {cluster: k, user: u}\n",
                   user_yaml);
    tl_kube_config_destroy(e->cfg);
    e->cfg = NULL;
    if (tl_kube_config_parse(text, strlen(text), source, NULL, &e->cfg, e->err, sizeof(e->err)) !=
        TL_OK)
        fail_msg("kubeconfig: %s", e->err);
}

/* An exec user running script (in the scratch directory) with one argument and FOO=bar. */
static void make_exec_cfg(struct env *e, const char *script, const char *script_text)
{
    write_file(e, script, script_text, 0755);
    char user[1024];
    (void)snprintf(user, sizeof(user),
                   "    exec:\n      apiVersion: " EXEC_V1 "\n      command: ./%s\n"
                   "      args: [a1]\n      env: [{name: FOO, value: bar}]\n"
                   "      interactiveMode: Never\n      provideClusterInfo: true\n"
                   "      installHint: see the docs\n",
                   script);
    make_cfg(e, user);
}

static struct tl_kube_creds *create(struct env *e, double exec_timeout, double recheck)
{
    struct tl_kube_creds_options opts = {.exec_timeout = exec_timeout,
                                         .token_recheck_interval = recheck};
    e->err[0] = '\0';
    e->creds = tl_kube_creds_create_ex(e->cfg, e->loop, &opts, e->err, sizeof(e->err));
    return e->creds;
}

#define assert_err_contains(e, s)                                                                  \
    do {                                                                                           \
        if (!strstr((e)->err, (s)))                                                                \
            fail_msg("message \"%s\" lacks \"%s\"", (e)->err, (s));                                \
    } while (0)

static void on_refresh(struct tl_kube_creds *creds, enum tl_err result, void *arg)
{
    struct env *e = arg;
    e->calls++;
    e->result = result;
    const char *token = tl_kube_creds_token(creds);
    (void)snprintf(e->token, sizeof(e->token), "%s", token ? token : "(none)");
    ev_break(e->loop, EVBREAK_ALL);
}

static void on_guard(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct env *e = w->data;
    e->guard_fired = true;
    ev_break(loop, EVBREAK_ALL);
}

/* Runs the loop until the refresh callback fires or `seconds` pass. */
static void run_until_refresh(struct env *e, double seconds)
{
    ev_timer guard;
    ev_timer_init(&guard, on_guard, seconds, 0.);
    guard.data = e;
    ev_timer_start(e->loop, &guard);
    tl_kube_creds_on_refresh(e->creds, on_refresh, e);
    ev_run(e->loop, 0);
    ev_timer_stop(e->loop, &guard);
}

/* Gone, or a zombie left to a non-reaping init: either way no longer running. */
static bool process_gone(pid_t pid)
{
    for (int i = 0; i < 200; i++) {
        if (kill(pid, 0) != 0 && errno == ESRCH)
            return true;
        char path[64];
        char stat[256] = "";
        (void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (f) {
            size_t n = fread(stat, 1, sizeof(stat) - 1, f);
            stat[n] = '\0';
            fclose(f);
            const char *paren = strrchr(stat, ')');
            if (paren && paren[1] == ' ' && paren[2] == 'Z')
                return true;
        }
        struct timespec ts = {0, 10L * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

static pid_t read_pid(const struct env *e, const char *name)
{
    char *text = read_back(e, name);
    assert_non_null(text);
    char *end = NULL;
    long pid = strtol(text, &end, 10);
    assert_true(end != text && pid > 1);
    free(text);
    return (pid_t)pid;
}

/* ---- RFC 3339 ---- */

static void rfc3339_times_parse(void **state)
{
    double t = 0;
    assert_int_equal(tl_kube_creds_parse_time("1970-01-01T00:00:00Z", &t), TL_OK);
    assert_true(t == 0);
    assert_int_equal(tl_kube_creds_parse_time("2024-02-29T12:34:56Z", &t), TL_OK);
    assert_true(t == 1709210096);
    assert_int_equal(tl_kube_creds_parse_time("2024-02-29t14:34:56.25+02:00", &t), TL_OK);
    assert_true(t == 1709210096.25);
    assert_int_equal(tl_kube_creds_parse_time("2024-02-29T07:04:56-05:30", &t), TL_OK);
    assert_true(t == 1709210096);
    assert_int_equal(tl_kube_creds_parse_time("1969-12-31T23:59:59z", &t), TL_OK);
    assert_true(t == -1);
    assert_int_equal(tl_kube_creds_parse_time("2000-03-01T00:00:00Z", &t), TL_OK);
    assert_true(t == 951868800);
}

static void malformed_times_are_refused(void **state)
{
    static const char *const bad[] = {
        "",
        "2024-02-30T00:00:00Z", /* no February 30 */
        "2023-02-29T00:00:00Z", /* not a leap year */
        "2024-13-01T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:60:00Z",
        "2024-01-01 00:00:00Z", /* RFC 3339 allows it, Kubernetes' Go parser does not */
        "2024-01-01T00:00:00",  /* no zone */
        "2024-01-01T00:00:00.Z",
        "2024-01-01T00:00:00+0200",
        "2024-01-01T00:00:00Zjunk",
        "2024-1-01T00:00:00Z",
        "24-01-01T00:00:00Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        double t = 42;
        if (tl_kube_creds_parse_time(bad[i], &t) != TL_EINVAL)
            fail_msg("\"%s\" was accepted", bad[i]);
        assert_true(t == 42);
    }
}

/* ---- ExecCredential ---- */

static enum tl_err parse_cred(const char *json, struct tl_kube_exec_credential *cred, char *err,
                              size_t errlen)
{
    /* "now" is 2024-01-01T00:00:00Z */
    return tl_kube_exec_credential_parse(json, strlen(json), EXEC_V1, 1704067200, cred, err,
                                         errlen);
}

static void exec_credential_with_token_parses(void **state)
{
    struct tl_kube_exec_credential cred = {0};
    char err[256];
    assert_int_equal(parse_cred("{\"kind\":\"ExecCredential\",\"apiVersion\":\"" EXEC_V1 "\","
                                "\"status\":{\"token\":\"abc\","
                                "\"expirationTimestamp\":\"2024-01-01T01:00:00Z\"}}",
                                &cred, err, sizeof(err)),
                     TL_OK);
    assert_string_equal(cred.token, "abc");
    assert_true(cred.expiry == 1704067200 + 3600);
    assert_null(cred.client_cert);
    tl_kube_exec_credential_clear(&cred);

    assert_int_equal(parse_cred("{\"kind\":\"ExecCredential\",\"apiVersion\":\"" EXEC_V1 "\","
                                "\"status\":{\"clientCertificateData\":\"CERT\","
                                "\"clientKeyData\":\"KEY\",\"expirationTimestamp\":null}}",
                                &cred, err, sizeof(err)),
                     TL_OK);
    assert_null(cred.token);
    assert_string_equal(cred.client_cert, "CERT");
    assert_int_equal(cred.client_cert_len, 4);
    assert_string_equal(cred.client_key, "KEY");
    assert_true(cred.expiry == 0);
    tl_kube_exec_credential_clear(&cred);

    /* v1beta1 has the same shape; what matters is that it matches the kubeconfig. */
    const char *beta = "{\"kind\":\"ExecCredential\","
                       "\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
                       "\"status\":{\"token\":\"beta\"}}";
    assert_int_equal(tl_kube_exec_credential_parse(beta, strlen(beta),
                                                   "client.authentication.k8s.io/v1beta1",
                                                   1704067200, &cred, err, sizeof(err)),
                     TL_OK);
    assert_string_equal(cred.token, "beta");
    tl_kube_exec_credential_clear(&cred);
}

static void bad_exec_credentials_are_refused(void **state)
{
    static const struct {
        const char *json;
        enum tl_err err;
        const char *msg;
    } cases[] = {
        {"hello", TL_EINVAL, "output (5 bytes) is not a JSON object"},
        {"[]", TL_EINVAL, "not a JSON object"},
        {"{\"kind\":\"Secret\",\"apiVersion\":\"" EXEC_V1 "\",\"status\":{\"token\":\"t\"}}",
         TL_EINVAL, "kind: expected ExecCredential"},
        {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
         "\"status\":{\"token\":\"t\"}}",
         TL_EINVAL, "the plugin answered client.authentication.k8s.io/v1beta1"},
        {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"" EXEC_V1 "\"}", TL_EINVAL,
         "status: missing"},
        {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"" EXEC_V1 "\",\"status\":{}}", TL_EINVAL,
         "neither a token nor"},
        {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"" EXEC_V1 "\",\"status\":{\"token\":7}}",
         TL_EINVAL, "status.token: expected a string"},
        {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"" EXEC_V1 "\","
         "\"status\":{\"clientCertificateData\":\"C\"}}",
         TL_EINVAL, "must come together"},
        {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"" EXEC_V1 "\","
         "\"status\":{\"token\":\"t\",\"expirationTimestamp\":\"tomorrow\"}}",
         TL_EINVAL, "\"tomorrow\" is not an RFC 3339 time"},
        {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"" EXEC_V1 "\","
         "\"status\":{\"token\":\"t\",\"expirationTimestamp\":\"2023-12-31T23:59:59Z\"}}",
         TL_EAUTH, "the credential expired at 2023-12-31T23:59:59Z"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tl_kube_exec_credential cred = {0};
        char err[256] = "";
        assert_int_equal(parse_cred(cases[i].json, &cred, err, sizeof(err)), cases[i].err);
        if (!strstr(err, cases[i].msg))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].msg);
        assert_null(cred.token);
    }
}

/* ---- static tokens, token files, TLS material ---- */

static void static_token_and_data_blobs(void **state)
{
    struct env *e = *state;
    make_cfg(e, "    token: static-tok\n"
                "    client-certificate-data: Q0VSVA==\n" /* CERT */
                "    client-key-data: S0VZ\n");           /* KEY */
    assert_non_null(create(e, 0, 0));
    assert_string_equal(tl_kube_creds_token(e->creds), "static-tok");
    const char *pem = NULL;
    size_t len = 0;
    assert_true(tl_kube_creds_client_cert(e->creds, &pem, &len));
    assert_int_equal(len, 4);
    assert_memory_equal(pem, "CERT", 4);
    assert_true(tl_kube_creds_client_key(e->creds, &pem, &len));
    assert_memory_equal(pem, "KEY", 3);
    assert_true(tl_kube_creds_ca(e->creds, &pem, &len));
    assert_int_equal(len, 6);
    assert_memory_equal(pem, "CA-PEM", 6);
    /* Nothing to refresh: invalidate changes nothing. */
    unsigned long gen = tl_kube_creds_generation(e->creds);
    tl_kube_creds_invalidate(e->creds);
    assert_false(tl_kube_creds_refreshing(e->creds));
    assert_string_equal(tl_kube_creds_token(e->creds), "static-tok");
    assert_int_equal(tl_kube_creds_generation(e->creds), gen);
}

static void pem_files_are_read(void **state)
{
    struct env *e = *state;
    write_file(e, "c.crt", "FILE-CERT\n", 0600);
    write_file(e, "c.key", "FILE-KEY\n", 0600);
    make_cfg(e, "    client-certificate: c.crt\n    client-key: c.key\n");
    assert_non_null(create(e, 0, 0));
    assert_null(tl_kube_creds_token(e->creds));
    const char *pem = NULL;
    size_t len = 0;
    assert_true(tl_kube_creds_client_cert(e->creds, &pem, &len));
    assert_int_equal(len, 10);
    assert_memory_equal(pem, "FILE-CERT\n", 10);
    assert_true(tl_kube_creds_client_key(e->creds, &pem, &len));
    assert_memory_equal(pem, "FILE-KEY\n", 9);
}

static void missing_pem_file_names_it(void **state)
{
    struct env *e = *state;
    make_cfg(e, "    client-certificate: gone.crt\n    client-key: gone.key\n");
    assert_null(create(e, 0, 0));
    assert_err_contains(e, "client-certificate ");
    assert_err_contains(e, "/gone.crt: no such file");
}

static void token_file_is_reread_when_it_changes(void **state)
{
    struct env *e = *state;
    write_file(e, "token", "first-token\n", 0600);
    make_cfg(e, "    tokenFile: token\n");
    assert_non_null(create(e, 0, -1)); /* stat on every call */
    assert_string_equal(tl_kube_creds_token(e->creds), "first-token");
    unsigned long gen = tl_kube_creds_generation(e->creds);

    write_file(e, "token", "second-token-longer \r\n", 0600);
    assert_string_equal(tl_kube_creds_token(e->creds), "second-token-longer");
    assert_int_equal(tl_kube_creds_generation(e->creds), gen + 1);

    /* A vanished or emptied file keeps the token we had. */
    char path[512];
    path_in(e, "token", path, sizeof(path));
    assert_int_equal(unlink(path), 0);
    assert_string_equal(tl_kube_creds_token(e->creds), "second-token-longer");
    write_file(e, "token", "\n", 0600);
    assert_string_equal(tl_kube_creds_token(e->creds), "second-token-longer");
    write_file(e, "token", "third\n", 0600);
    assert_string_equal(tl_kube_creds_token(e->creds), "third");
}

static void token_file_is_checked_rarely_but_invalidate_rereads(void **state)
{
    struct env *e = *state;
    write_file(e, "token", "old-token\n", 0600);
    make_cfg(e, "    tokenFile: token\n");
    assert_non_null(create(e, 0, 0)); /* the default interval, seconds long */
    assert_string_equal(tl_kube_creds_token(e->creds), "old-token");
    write_file(e, "token", "new-token-value\n", 0600);
    assert_string_equal(tl_kube_creds_token(e->creds), "old-token");
    tl_kube_creds_invalidate(e->creds);
    assert_string_equal(tl_kube_creds_token(e->creds), "new-token-value");
}

static void unreadable_token_file_falls_back_to_token(void **state)
{
    struct env *e = *state;
    make_cfg(e, "    token: fallback\n    tokenFile: missing-token\n");
    assert_non_null(create(e, 0, -1));
    assert_string_equal(tl_kube_creds_token(e->creds), "fallback");
    /* Once the file appears it wins. */
    write_file(e, "missing-token", "from-file\n", 0600);
    assert_string_equal(tl_kube_creds_token(e->creds), "from-file");

    tl_kube_creds_destroy(e->creds);
    e->creds = NULL;
    make_cfg(e, "    tokenFile: nothing-here\n");
    assert_null(create(e, 0, -1));
    assert_err_contains(e, "token file ");
    assert_err_contains(e, "/nothing-here: no such file");
}

/* ---- exec plugins ---- */

/* Prints a fresh token (tok-<arg>-<FOO>-<run number>) that expires `secs` seconds from now. */
static const char *expiring_plugin(const char *secs)
{
    static char text[1024];
    (void)snprintf(text, sizeof(text),
                   "#!/bin/sh\n"
                   "dir=$(dirname \"$0\")\n"
                   "n=$(cat \"$dir/count\" 2>/dev/null || echo 0)\n"
                   "n=$((n + 1))\n"
                   "echo $n > \"$dir/count\"\n"
                   "printf '%%s' \"$KUBERNETES_EXEC_INFO\" > \"$dir/exec_info\"\n"
                   "at=$(( $(date +%%s) + %s ))\n"
                   "exp=$(date -u -d \"@$at\" +%%Y-%%m-%%dT%%H:%%M:%%SZ 2>/dev/null || "
                   "date -u -r \"$at\" +%%Y-%%m-%%dT%%H:%%M:%%SZ)\n"
                   "printf '{\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\","
                   "\"status\":{\"token\":\"tok-%%s-%%s-%%s\",\"expirationTimestamp\":\"%%s\"}}\\n'"
                   " \"$1\" \"$FOO\" \"$n\" \"$exp\"\n",
                   secs, EXEC_V1);
    return text;
}

static void exec_credential_is_refreshed_on_the_loop_before_expiry(void **state)
{
    struct env *e = *state;
    make_exec_cfg(e, "plugin.sh", expiring_plugin("3"));
    assert_non_null(create(e, 0, 0));
    assert_string_equal(tl_kube_creds_token(e->creds), "tok-a1-bar-1");
    assert_false(tl_kube_creds_refreshing(e->creds));
    unsigned long gen = tl_kube_creds_generation(e->creds);

    /* The plugin was told what kubectl tells it: not interactive, and which cluster. */
    char *info = read_back(e, "exec_info");
    assert_non_null(info);
    cJSON *json = cJSON_Parse(info);
    free(info);
    assert_non_null(json);
    cJSON *spec = cJSON_GetObjectItem(json, "spec");
    assert_string_equal(cJSON_GetObjectItem(json, "apiVersion")->valuestring, EXEC_V1);
    assert_string_equal(cJSON_GetObjectItem(json, "kind")->valuestring, "ExecCredential");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(spec, "interactive")));
    cJSON *cluster = cJSON_GetObjectItem(spec, "cluster");
    assert_string_equal(cJSON_GetObjectItem(cluster, "server")->valuestring,
                        "https://k.example.com");
    assert_string_equal(cJSON_GetObjectItem(cluster, "certificate-authority-data")->valuestring,
                        "Q0EtUEVN");
    cJSON_Delete(json);

    /* Nobody asks: the loop refreshes it shortly before it expires. */
    run_until_refresh(e, 15);
    assert_false(e->guard_fired);
    assert_int_equal(e->calls, 1);
    assert_int_equal(e->result, TL_OK);
    assert_string_equal(e->token, "tok-a1-bar-2");
    assert_string_equal(tl_kube_creds_token(e->creds), "tok-a1-bar-2");
    assert_true(tl_kube_creds_generation(e->creds) > gen);
    assert_false(tl_kube_creds_refreshing(e->creds));
}

static void invalidate_refreshes_on_a_loop_of_its_own(void **state)
{
    struct env *e = *state;
    /* Not the default loop: the plugin's exit is found by polling, not by ev_child. */
    e->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(e->loop);
    make_exec_cfg(e, "plugin.sh", expiring_plugin("3600"));
    assert_non_null(create(e, 0, 0));
    assert_string_equal(tl_kube_creds_token(e->creds), "tok-a1-bar-1");
    tl_kube_creds_invalidate(e->creds);
    assert_true(tl_kube_creds_refreshing(e->creds));
    tl_kube_creds_invalidate(e->creds); /* one in flight at most */
    run_until_refresh(e, 15);
    assert_int_equal(e->calls, 1);
    assert_int_equal(e->result, TL_OK);
    assert_string_equal(tl_kube_creds_token(e->creds), "tok-a1-bar-2");
    char *count = read_back(e, "count");
    assert_string_equal(count, "2\n");
    free(count);
}

static void exec_certificates_win_over_none(void **state)
{
    struct env *e = *state;
    make_exec_cfg(e, "certs.sh",
                  "#!/bin/sh\n"
                  "echo '{\"apiVersion\":\"" EXEC_V1 "\",\"kind\":\"ExecCredential\",'\n"
                  "echo '\"status\":{\"clientCertificateData\":\"EXEC-CERT\","
                  "\"clientKeyData\":\"EXEC-KEY\"}}'\n");
    assert_non_null(create(e, 0, 0));
    assert_null(tl_kube_creds_token(e->creds));
    const char *pem = NULL;
    size_t len = 0;
    assert_true(tl_kube_creds_client_cert(e->creds, &pem, &len));
    assert_int_equal(len, 9);
    assert_memory_equal(pem, "EXEC-CERT", 9);
    assert_true(tl_kube_creds_client_key(e->creds, &pem, &len));
    assert_memory_equal(pem, "EXEC-KEY", 8);
}

static void garbage_output_is_an_error_naming_the_plugin(void **state)
{
    struct env *e = *state;
    make_exec_cfg(e, "garbage.sh", "#!/bin/sh\necho 'Please log in at https://example.com'\n");
    assert_null(create(e, 0, 0));
    char path[512];
    path_in(e, "garbage.sh", path, sizeof(path));
    assert_err_contains(e, "exec plugin \"");
    assert_err_contains(e, path);
    assert_err_contains(e, "is not a JSON object");
    /* The plugin's output is not echoed: it might hold a secret. */
    assert_null(strstr(e->err, "log in"));
}

static void failing_plugin_reports_its_status(void **state)
{
    struct env *e = *state;
    make_exec_cfg(e, "fail.sh", "#!/bin/sh\necho 'fail.sh: expected stderr' >&2\nexit 1\n");
    assert_null(create(e, 0, 0));
    assert_err_contains(e, "fail.sh\": exited with status 1");
}

static void expired_credential_is_refused(void **state)
{
    struct env *e = *state;
    make_exec_cfg(e, "old.sh",
                  "#!/bin/sh\n"
                  "echo '{\"apiVersion\":\"" EXEC_V1 "\",\"kind\":\"ExecCredential\",'\n"
                  "echo '\"status\":{\"token\":\"t\",\"expirationTimestamp\":"
                  "\"2001-01-01T00:00:00Z\"}}'\n");
    assert_null(create(e, 0, 0));
    assert_err_contains(e, "old.sh\": status.expirationTimestamp: the credential expired");
}

static void missing_command_shows_the_install_hint(void **state)
{
    struct env *e = *state;
    make_cfg(e, "    exec:\n      apiVersion: " EXEC_V1 "\n      command: tl-no-such-plugin\n"
                "      interactiveMode: Never\n      installHint: brew install tl-plugin\n");
    assert_null(create(e, 0, 0));
    assert_string_equal(e->err, "exec plugin \"tl-no-such-plugin\": command not found. brew "
                                "install tl-plugin");
}

static void oversized_output_is_refused(void **state)
{
    struct env *e = *state;
    make_exec_cfg(e, "big.sh", "#!/bin/sh\nhead -c 1100000 /dev/zero\n");
    assert_null(create(e, 0, 0));
    assert_err_contains(e, "big.sh\": printed more than 1048576 bytes");
}

static void hanging_plugin_is_killed_at_start_up(void **state)
{
    struct env *e = *state;
    /* The grandchild holds stdout open too: only killing the process group ends the wait. */
    make_exec_cfg(e, "hang.sh",
                  "#!/bin/sh\n"
                  "dir=$(dirname \"$0\")\n"
                  "echo $$ > \"$dir/pid\"\n"
                  "sleep 30 &\n"
                  "echo $! > \"$dir/child\"\n"
                  "wait\n");
    time_t start = time(NULL);
    assert_null(create(e, 1.0, 0));
    assert_true(time(NULL) - start < 10);
    assert_err_contains(e, "hang.sh\": no answer within 1 s");
    assert_true(process_gone(read_pid(e, "pid")));
    assert_true(process_gone(read_pid(e, "child")));
}

/* Answers once (no expiry), then hangs on every later run. */
static const char *const once_then_hang =
    "#!/bin/sh\n"
    "dir=$(dirname \"$0\")\n"
    "if [ -e \"$dir/count\" ]; then echo $$ > \"$dir/pid\"; exec sleep 30; fi\n"
    "echo 1 > \"$dir/count\"\n"
    "echo '{\"apiVersion\":\"" EXEC_V1 "\",\"kind\":\"ExecCredential\","
    "\"status\":{\"token\":\"first\"}}'\n";

static void hanging_refresh_times_out_and_keeps_the_token(void **state)
{
    struct env *e = *state;
    make_exec_cfg(e, "once.sh", once_then_hang);
    assert_non_null(create(e, 1.0, 0));
    assert_string_equal(tl_kube_creds_token(e->creds), "first");
    tl_kube_creds_invalidate(e->creds);
    assert_true(tl_kube_creds_refreshing(e->creds));
    run_until_refresh(e, 15);
    assert_int_equal(e->calls, 1);
    assert_int_equal(e->result, TL_ETIMEDOUT);
    assert_string_equal(e->token, "first");
    assert_false(tl_kube_creds_refreshing(e->creds));
    assert_true(process_gone(read_pid(e, "pid")));
}

static void stop_loop(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

static void destroy_kills_a_running_plugin(void **state)
{
    struct env *e = *state;
    make_exec_cfg(e, "once.sh", once_then_hang);
    assert_non_null(create(e, 30.0, 0));
    tl_kube_creds_invalidate(e->creds);
    /* Let the plugin get as far as writing its pid. */
    char pidfile[512];
    path_in(e, "pid", pidfile, sizeof(pidfile));
    for (int i = 0; i < 100 && access(pidfile, F_OK) != 0; i++) {
        ev_timer t;
        ev_timer_init(&t, stop_loop, 0.05, 0.);
        ev_timer_start(e->loop, &t);
        ev_run(e->loop, 0);
        ev_timer_stop(e->loop, &t);
    }
    pid_t pid = read_pid(e, "pid");
    assert_true(tl_kube_creds_refreshing(e->creds));
    tl_kube_creds_destroy(e->creds);
    e->creds = NULL;
    assert_true(process_gone(pid));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        cmocka_unit_test(rfc3339_times_parse),
        cmocka_unit_test(malformed_times_are_refused),
        cmocka_unit_test(exec_credential_with_token_parses),
        cmocka_unit_test(bad_exec_credentials_are_refused),
        T(static_token_and_data_blobs),
        T(pem_files_are_read),
        T(missing_pem_file_names_it),
        T(token_file_is_reread_when_it_changes),
        T(token_file_is_checked_rarely_but_invalidate_rereads),
        T(unreadable_token_file_falls_back_to_token),
        T(exec_credential_is_refreshed_on_the_loop_before_expiry),
        T(invalidate_refreshes_on_a_loop_of_its_own),
        T(exec_certificates_win_over_none),
        T(garbage_output_is_an_error_naming_the_plugin),
        T(failing_plugin_reports_its_status),
        T(expired_credential_is_refused),
        T(missing_command_shows_the_install_hint),
        T(oversized_output_is_refused),
        T(hanging_plugin_is_killed_at_start_up),
        T(hanging_refresh_times_out_and_keeps_the_token),
        T(destroy_kills_a_running_plugin),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
