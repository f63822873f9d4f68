#include "kube_creds.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <ev.h>

#include "base64.h"
#include "log.h"

extern char **environ;

#define TOKEN_FILE_MAX ((size_t)1 << 20)
#define EXEC_INFO_VAR  "KUBERNETES_EXEC_INFO"
/* Refresh an expiring credential this long before it expires, at most (and 10% of its life). */
#define REFRESH_MARGIN_MAX 60.0
#define REFRESH_DELAY_MIN  1.0
/* After a failed refresh of an expiring credential, retry after 5 s, 10 s, ... up to 60 s. */
#define RETRY_DELAY_MIN 5.0
#define RETRY_DELAY_MAX 60.0
/* How often a plugin is checked for exit on a loop where ev_child cannot be used. */
#define REAP_POLL_INTERVAL 0.05
#define READ_CHUNK         4096

enum token_source { SRC_NONE, SRC_STATIC, SRC_FILE, SRC_EXEC };

/* One background run of the exec plugin; pid is 0 when none runs. */
struct run {
    pid_t pid;
    int fd; /* the read end of the plugin's stdout; -1 once closed */
    char *out;
    size_t len;
    size_t cap;
    int read_errno;
    bool exited;
    int status;
    bool timed_out;
    bool too_big;
    ev_io io;
    ev_child child;  /* on the default loop, which reaps every child itself */
    ev_timer reaper; /* elsewhere: waitpid(WNOHANG) now and then */
    ev_timer timeout;
};

struct tl_kube_creds {
    const struct tl_kube_config *cfg;
    struct ev_loop *loop;
    double exec_timeout;
    double recheck;
    unsigned long generation;
    char *token;

    /* Token file: what the last successful read saw, and when to look again (monotonic). */
    double next_check;
    dev_t seen_dev;
    ino_t seen_ino;
    off_t seen_size;
    struct timespec seen_mtime;

    char *ca;
    size_t ca_len;
    char *cert; /* from the kubeconfig */
    size_t cert_len;
    char *key;
    size_t key_len;
    char *exec_cert; /* from the exec plugin; wins over cert/key */
    size_t exec_cert_len;
    char *exec_key;
    size_t exec_key_len;

    char *exec_info_env; /* "KUBERNETES_EXEC_INFO=<json>" */
    double expiry;       /* wall-clock seconds; 0: none */
    ev_timer refresh;    /* unreferenced: a pending refresh alone does not keep the loop running */
    struct run run;
    ev_timer notify; /* reports a plugin that could not even start, from the loop */
    tl_kube_creds_cb cb;
    void *cb_arg;
    enum token_source source;
    enum tl_err notify_result;
    unsigned failures;
    bool seen_valid;
    bool warned; /* a failed token-file read was logged; quiet until one succeeds */
    bool refresh_armed;
};

static enum tl_err failf(char *errbuf, size_t errlen, enum tl_err err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum tl_err failf(char *errbuf, size_t errlen, enum tl_err err, const char *fmt, ...)
{
    if (errbuf && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return err;
}

static double clock_seconds(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- RFC 3339 --------------------------------------------------------------------------- */

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/*
 * Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar: Howard Hinnant's
 * days_from_civil ("chrono-Compatible Low-Level Date Algorithms"), which shifts the year to start
 * in March so the leap day falls last.
 */
static long days_from_civil(long y, int m, int d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153L * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

enum tl_err tl_kube_creds_parse_time(const char *s, double *out)
{
    static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int year;
    int month;
    int day;
    int hour;
    int min;
    int sec;
    /* Each test runs only when the ones before matched, so no read passes the NUL. */
    if (!s || !digits(s, 4, &year) || s[4] != '-' || !digits(s + 5, 2, &month) || s[7] != '-' ||
        !digits(s + 8, 2, &day) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &hour) ||
        s[13] != ':' || !digits(s + 14, 2, &min) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return TL_EINVAL;
    const char *p = s + 19;
    double frac = 0;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return TL_EINVAL;
        for (double scale = 0.1; *p >= '0' && *p <= '9'; p++, scale /= 10)
            frac += (*p - '0') * scale;
    }
    long offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    }
    else if (*p == '+' || *p == '-') {
        int oh;
        int om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return TL_EINVAL;
        offset = (*p == '-' ? -1L : 1L) * (oh * 3600L + om * 60L);
        p += 6;
    }
    else {
        return TL_EINVAL;
    }
    if (*p != '\0' || month < 1 || month > 12 || day < 1 || hour > 23 || min > 59 || sec > 60)
        return TL_EINVAL;
    int mdays = month_days[month - 1] + (month == 2 && leap_year(year));
    if (day > mdays)
        return TL_EINVAL;
    long days = days_from_civil(year, month, day);
    *out = (double)days * 86400.0 + hour * 3600.0 + min * 60.0 + sec + frac - (double)offset;
    return TL_OK;
}

/* ---- ExecCredential --------------------------------------------------------------------- */

void tl_kube_exec_credential_clear(struct tl_kube_exec_credential *cred)
{
    if (!cred)
        return;
    free(cred->token);
    free(cred->client_cert);
    free(cred->client_key);
    *cred = (struct tl_kube_exec_credential){0};
}

/* A string member: absent, null or "" give NULL; another type is an error. */
static enum tl_err member_string(const cJSON *obj, const char *name, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return TL_OK;
    if (!cJSON_IsString(v))
        return TL_EINVAL;
    if (v->valuestring[0])
        *out = v->valuestring;
    return TL_OK;
}

static char *dup_bytes(const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

enum tl_err tl_kube_exec_credential_parse(const char *json, size_t len, const char *api_version,
                                          double now, struct tl_kube_exec_credential *out,
                                          char *errbuf, size_t errlen)
{
    enum tl_err result = TL_EINVAL;
    struct tl_kube_exec_credential cred = {0};
    /* The output is never echoed: a broken plugin may still have printed a secret. */
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(root)) {
        result = failf(errbuf, errlen, TL_EINVAL, "output (%zu bytes) is not a JSON object", len);
        goto out;
    }
    const char *kind = NULL;
    const char *api = NULL;
    if (member_string(root, "kind", &kind) != TL_OK || !kind ||
        strcmp(kind, "ExecCredential") != 0) {
        result = failf(errbuf, errlen, TL_EINVAL, "kind: expected ExecCredential");
        goto out;
    }
    if (member_string(root, "apiVersion", &api) != TL_OK || !api ||
        (api_version && strcmp(api, api_version) != 0)) {
        result = failf(errbuf, errlen, TL_EINVAL,
                       "apiVersion: the kubeconfig asks for %s, the plugin answered %.80s",
                       api_version ? api_version : "(any)", api ? api : "nothing");
        goto out;
    }
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(root, "status");
    if (!cJSON_IsObject(status)) {
        result = failf(errbuf, errlen, TL_EINVAL, "status: missing");
        goto out;
    }
    static const char *const fields[] = {"token", "clientCertificateData", "clientKeyData",
                                         "expirationTimestamp"};
    const char *v[4];
    for (size_t i = 0; i < 4; i++) {
        if (member_string(status, fields[i], &v[i]) != TL_OK) {
            result = failf(errbuf, errlen, TL_EINVAL, "status.%s: expected a string", fields[i]);
            goto out;
        }
    }
    if (!v[1] != !v[2]) {
        result = failf(errbuf, errlen, TL_EINVAL,
                       "status: clientCertificateData and clientKeyData must come together");
        goto out;
    }
    if (!v[0] && !v[1]) {
        result = failf(errbuf, errlen, TL_EINVAL,
                       "status: neither a token nor clientCertificateData/clientKeyData");
        goto out;
    }
    if (v[3]) {
        if (tl_kube_creds_parse_time(v[3], &cred.expiry) != TL_OK) {
            result = failf(errbuf, errlen, TL_EINVAL,
                           "status.expirationTimestamp: \"%.64s\" is not an RFC 3339 time", v[3]);
            goto out;
        }
        if (cred.expiry <= now) {
            result = failf(errbuf, errlen, TL_EAUTH,
                           "status.expirationTimestamp: the credential expired at %.64s", v[3]);
            goto out;
        }
    }
    if ((v[0] && !(cred.token = strdup(v[0]))) ||
        (v[1] && !(cred.client_cert = dup_bytes(v[1], cred.client_cert_len = strlen(v[1])))) ||
        (v[2] && !(cred.client_key = dup_bytes(v[2], cred.client_key_len = strlen(v[2]))))) {
        result = failf(errbuf, errlen, TL_ENOMEM, "out of memory");
        goto out;
    }
    *out = cred;
    cred = (struct tl_kube_exec_credential){0};
    result = TL_OK;
out:
    tl_kube_exec_credential_clear(&cred);
    cJSON_Delete(root);
    return result;
}

/* ---- files ------------------------------------------------------------------------------ */

static void trim_right(char *s, size_t *len)
{
    size_t n = *len;
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    s[n] = '\0';
    *len = n;
}

static const char *read_problem(enum tl_err err)
{
    switch (err) {
    case TL_ENOTFOUND:
        return "no such file";
    case TL_ETOOBIG:
        return "file too large";
    case TL_ENOMEM:
        return "out of memory";
    default:
        return strerror(errno);
    }
}

static enum tl_err read_token(const char *path, char **out, char *errbuf, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    enum tl_err result = tl_kube_config_read_file(path, TOKEN_FILE_MAX, &text, &len);
    if (result != TL_OK)
        return failf(errbuf, errlen, result, "token file %s: %s", path, read_problem(result));
    trim_right(text, &len);
    if (len == 0) {
        free(text);
        return failf(errbuf, errlen, TL_EINVAL, "token file %s: empty", path);
    }
    *out = text;
    return TL_OK;
}

static enum tl_err read_pem(const char *what, const char *path, char **out, size_t *len,
                            char *errbuf, size_t errlen)
{
    enum tl_err result = tl_kube_config_read_file(path, TL_KUBE_CONFIG_FILE_MAX, out, len);
    if (result != TL_OK)
        return failf(errbuf, errlen, result, "%s %s: %s", what, path, read_problem(result));
    return TL_OK;
}

static bool same_file(const struct tl_kube_creds *c, const struct stat *st)
{
    return c->seen_valid && st->st_dev == c->seen_dev && st->st_ino == c->seen_ino &&
           st->st_size == c->seen_size && st->st_mtim.tv_sec == c->seen_mtime.tv_sec &&
           st->st_mtim.tv_nsec == c->seen_mtime.tv_nsec;
}

/* Takes ownership of token (may be NULL); counts a generation only when it really changes. */
static void set_token(struct tl_kube_creds *c, char *token)
{
    if ((!c->token && !token) || (c->token && token && strcmp(c->token, token) == 0)) {
        free(token);
        return;
    }
    free(c->token);
    c->token = token;
    c->generation++;
}

/*
 * Kubelet rotates a projected token by swapping a symlink, so a changed inode, size or mtime
 * means a new token. Returns TL_OK when the token is current (re-read, unchanged, or not due for
 * a look); otherwise err says why and the old token stays.
 */
static enum tl_err reread_token_file(struct tl_kube_creds *c, bool force, char *err, size_t errlen)
{
    double now = clock_seconds(CLOCK_MONOTONIC);
    if (!force && now < c->next_check)
        return TL_OK;
    c->next_check = now + c->recheck;
    const char *path = c->cfg->token_file;
    struct stat st;
    if (stat(path, &st) != 0)
        return failf(err, errlen, errno == ENOENT ? TL_ENOTFOUND : TL_EIO, "token file %s: %s",
                     path, errno == ENOENT ? "no such file" : strerror(errno));
    if (!force && same_file(c, &st))
        return TL_OK;
    char *token = NULL;
    enum tl_err result = read_token(path, &token, err, errlen);
    if (result != TL_OK)
        return result;
    c->seen_valid = true;
    c->seen_dev = st.st_dev;
    c->seen_ino = st.st_ino;
    c->seen_size = st.st_size;
    c->seen_mtime = st.st_mtim;
    set_token(c, token);
    return TL_OK;
}

/* A failed re-read keeps the old token (usually still valid a while) and warns once. */
static void recheck_token_file(struct tl_kube_creds *c, bool force)
{
    char err[512];
    if (reread_token_file(c, force, err, sizeof(err)) == TL_OK) {
        c->warned = false;
        return;
    }
    if (!c->warned)
        TL_WARN("cannot re-read the token file; keeping the old token", TL_STR("error", err));
    c->warned = true;
}

/* ---- exec plugin: spawning -------------------------------------------------------------- */

static const char *plugin_name(const struct tl_kube_creds *c)
{
    return c->cfg->exec->command;
}

/* True when environment entry e ("NAME=value") sets the variable that entry def defines. */
static bool same_var(const char *e, const char *def)
{
    const char *eq = strchr(def, '=');
    size_t n = eq ? (size_t)(eq - def) : strlen(def);
    return strncmp(e, def, n) == 0 && e[n] == '=';
}

/* Our environment, minus what the kubeconfig overrides, plus its env and KUBERNETES_EXEC_INFO. */
static char **build_envp(const struct tl_kube_creds *c)
{
    const struct tl_kube_exec *x = c->cfg->exec;
    size_t n = 0;
    size_t extra = 0;
    for (char **e = environ; e && *e; e++)
        n++;
    for (char **e = x->env; *e; e++)
        extra++;
    char **envp = calloc(n + extra + 2, sizeof(*envp));
    if (!envp)
        return NULL;
    size_t o = 0;
    for (char **e = environ; e && *e; e++) {
        bool overridden = same_var(*e, c->exec_info_env);
        for (char **d = x->env; !overridden && *d; d++)
            overridden = same_var(*e, *d);
        if (!overridden)
            envp[o++] = *e;
    }
    for (char **e = x->env; *e; e++)
        envp[o++] = *e;
    envp[o] = c->exec_info_env;
    return envp;
}

static char **build_argv(const struct tl_kube_exec *x)
{
    size_t n = 0;
    for (char **a = x->args; *a; a++)
        n++;
    char **argv = calloc(n + 2, sizeof(*argv));
    if (!argv)
        return NULL;
    argv[0] = x->command;
    for (size_t i = 0; i < n; i++)
        argv[i + 1] = x->args[i];
    return argv;
}

/*
 * Starts the plugin with stdin on /dev/null (it never gets a terminal), stdout on a pipe we read
 * and stderr shared with ours, in a process group of its own so that a timeout kills whatever it
 * started too. On success *pid and *fd (non-blocking, close-on-exec) are the caller's.
 */
static enum tl_err spawn_plugin(const struct tl_kube_creds *c, pid_t *pid, int *fd, char *errbuf,
                                size_t errlen)
{
    const struct tl_kube_exec *x = c->cfg->exec;
    enum tl_err result = TL_OK;
    int fds[2] = {-1, -1};
    char **argv = build_argv(x);
    char **envp = build_envp(c);
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    bool have_actions = false;
    bool have_attr = false;
    if (!argv || !envp) {
        result = failf(errbuf, errlen, TL_ENOMEM, "out of memory");
        goto out;
    }
    if (pipe(fds) != 0 || fcntl(fds[0], F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(fds[1], F_SETFD, FD_CLOEXEC) != 0 || fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0) {
        result = failf(errbuf, errlen, TL_EIO, "exec plugin \"%s\": pipe: %s", plugin_name(c),
                       strerror(errno));
        goto out;
    }
    sigset_t none;
    sigset_t defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    static const int reset[] = {SIGPIPE, SIGCHLD, SIGINT,  SIGTERM, SIGHUP,
                                SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM};
    for (size_t i = 0; i < sizeof(reset) / sizeof(reset[0]); i++)
        sigaddset(&defaults, reset[i]);
    int rc = posix_spawn_file_actions_init(&actions);
    have_actions = rc == 0;
    if (rc == 0)
        rc = posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    if (rc == 0) {
        rc = posix_spawnattr_init(&attr);
        have_attr = rc == 0;
    }
    if (rc == 0)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                 POSIX_SPAWN_SETSIGDEF);
    if (rc == 0)
        rc = posix_spawnattr_setpgroup(&attr, 0);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&attr, &defaults);
    if (rc == 0)
        rc = posix_spawnp(pid, x->command, &actions, &attr, argv, envp);
    if (rc == ENOENT) {
        result =
            failf(errbuf, errlen, TL_ENOTFOUND, "exec plugin \"%s\": command not found%s%s",
                  x->command, x->install_hint ? ". " : "", x->install_hint ? x->install_hint : "");
        goto out;
    }
    if (rc != 0) {
        result = failf(errbuf, errlen, TL_EIO, "exec plugin \"%s\": cannot run it: %s", x->command,
                       strerror(rc));
        goto out;
    }
    *fd = fds[0];
    fds[0] = -1;
out:
    if (have_actions)
        posix_spawn_file_actions_destroy(&actions);
    if (have_attr)
        posix_spawnattr_destroy(&attr);
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    free(argv);
    free(envp);
    return result;
}

/* Appends what fd has to *buf, up to cap + 1 bytes (one past the cap marks "too big"). */
static ssize_t read_some(int fd, char **buf, size_t *len, size_t *cap, size_t max)
{
    if (*len == *cap) {
        if (*cap > max)
            return 0;
        size_t bigger = *cap ? *cap * 2 : READ_CHUNK;
        if (bigger > max + 1)
            bigger = max + 1;
        char *grown = realloc(*buf, bigger + 1);
        if (!grown) {
            errno = ENOMEM;
            return -1;
        }
        *buf = grown;
        *cap = bigger;
    }
    ssize_t got = read(fd, *buf + *len, *cap - *len);
    if (got > 0)
        *len += (size_t)got;
    return got;
}

/* Judges a finished run: how it ended, then what it printed. */
static enum tl_err judge(const struct tl_kube_creds *c, const char *out, size_t len, int status,
                         bool timed_out, bool too_big, int read_errno,
                         struct tl_kube_exec_credential *cred, char *errbuf, size_t errlen)
{
    const char *name = plugin_name(c);
    if (timed_out)
        return failf(errbuf, errlen, TL_ETIMEDOUT, "exec plugin \"%s\": no answer within %.0f s",
                     name, c->exec_timeout);
    if (too_big)
        return failf(errbuf, errlen, TL_ETOOBIG, "exec plugin \"%s\": printed more than %zu bytes",
                     name, TL_KUBE_CREDS_EXEC_OUTPUT_MAX);
    if (read_errno)
        return failf(errbuf, errlen, TL_EIO, "exec plugin \"%s\": reading its output: %s", name,
                     strerror(read_errno));
    if (WIFSIGNALED(status))
        return failf(errbuf, errlen, TL_EIO, "exec plugin \"%s\": killed by signal %d", name,
                     WTERMSIG(status));
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        return failf(errbuf, errlen, TL_EIO, "exec plugin \"%s\": exited with status %d", name,
                     WEXITSTATUS(status));
    char why[256];
    enum tl_err result =
        tl_kube_exec_credential_parse(out ? out : "", len, c->cfg->exec->api_version,
                                      clock_seconds(CLOCK_REALTIME), cred, why, sizeof(why));
    if (result != TL_OK)
        return failf(errbuf, errlen, result, "exec plugin \"%s\": %s", name, why);
    return TL_OK;
}

/* Runs the plugin to completion, blocking; only for the first fetch. */
static enum tl_err run_sync(struct tl_kube_creds *c, struct tl_kube_exec_credential *cred,
                            char *errbuf, size_t errlen)
{
    pid_t pid = 0;
    int fd = -1;
    enum tl_err result = spawn_plugin(c, &pid, &fd, errbuf, errlen);
    if (result != TL_OK)
        return result;
    char *out = NULL;
    size_t len = 0;
    size_t cap = 0;
    int read_errno = 0;
    bool timed_out = false;
    bool too_big = false;
    bool exited = false;
    int status = 0;
    double deadline = clock_seconds(CLOCK_MONOTONIC) + c->exec_timeout;
    for (;;) {
        double left = deadline - clock_seconds(CLOCK_MONOTONIC);
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        /* Wait at most a second at a time, so a huge timeout cannot overflow the int. */
        int n = poll(&p, 1, left < 1 ? (int)ceil(left * 1000) : 1000);
        if (n < 0 && errno != EINTR) {
            read_errno = errno;
            break;
        }
        if (n <= 0)
            continue;
        ssize_t got = read_some(fd, &out, &len, &cap, TL_KUBE_CREDS_EXEC_OUTPUT_MAX);
        if (len > TL_KUBE_CREDS_EXEC_OUTPUT_MAX) {
            too_big = true;
            break;
        }
        if (got == 0)
            break;
        if (got < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
            read_errno = errno;
            break;
        }
    }
    close(fd);
    /* Output is complete; give the plugin what is left of its time to exit. */
    while (!timed_out && !too_big && !read_errno) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD)) {
            /* ECHILD: someone else reaped it (SIGCHLD ignored); its status is lost. */
            exited = true;
            if (r < 0)
                status = 0;
            break;
        }
        if (clock_seconds(CLOCK_MONOTONIC) >= deadline) {
            timed_out = true;
            break;
        }
        (void)poll(NULL, 0, 10);
    }
    if (!exited) {
        (void)kill(-pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    result = judge(c, out, len, status, timed_out, too_big, read_errno, cred, errbuf, errlen);
    free(out);
    return result;
}

/* ---- exec plugin: the credential and its refresh ---------------------------------------- */

/*
 * Timers count from the loop's cached time, which is stale when we are called from outside a
 * callback (at start-up, or after a blocking first fetch): refresh it first.
 */
static void start_timer(struct tl_kube_creds *c, ev_timer *w, double delay)
{
    ev_now_update(c->loop);
    ev_timer_set(w, delay, 0.);
    ev_timer_start(c->loop, w);
}

static void arm_refresh(struct tl_kube_creds *c, double delay)
{
    if (c->refresh_armed) {
        ev_ref(c->loop);
        ev_timer_stop(c->loop, &c->refresh);
    }
    start_timer(c, &c->refresh, delay);
    ev_unref(c->loop);
    c->refresh_armed = true;
}

static void disarm_refresh(struct tl_kube_creds *c)
{
    if (!c->refresh_armed)
        return;
    ev_ref(c->loop);
    ev_timer_stop(c->loop, &c->refresh);
    c->refresh_armed = false;
}

static bool same_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    return (!a && !b) || (a && b && alen == blen && memcmp(a, b, alen) == 0);
}

/* Takes what cred owns, and plans the next refresh from its expiry. */
static void apply(struct tl_kube_creds *c, struct tl_kube_exec_credential *cred)
{
    set_token(c, cred->token);
    if (!same_bytes(c->exec_cert, c->exec_cert_len, cred->client_cert, cred->client_cert_len) ||
        !same_bytes(c->exec_key, c->exec_key_len, cred->client_key, cred->client_key_len))
        c->generation++;
    free(c->exec_cert);
    free(c->exec_key);
    c->exec_cert = cred->client_cert;
    c->exec_cert_len = cred->client_cert_len;
    c->exec_key = cred->client_key;
    c->exec_key_len = cred->client_key_len;
    c->expiry = cred->expiry;
    *cred = (struct tl_kube_exec_credential){0};
    c->failures = 0;
    if (c->expiry <= 0) {
        /* No expiry: keep it until the server rejects it (client-go does the same). */
        disarm_refresh(c);
        return;
    }
    double left = c->expiry - clock_seconds(CLOCK_REALTIME);
    double margin = fmin(REFRESH_MARGIN_MAX, left / 10);
    arm_refresh(c, fmax(left - margin, REFRESH_DELAY_MIN));
}

static void stop_run(struct tl_kube_creds *c)
{
    struct run *r = &c->run;
    ev_io_stop(c->loop, &r->io);
    ev_child_stop(c->loop, &r->child);
    ev_timer_stop(c->loop, &r->reaper);
    ev_timer_stop(c->loop, &r->timeout);
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

static void close_pipe(struct tl_kube_creds *c)
{
    ev_io_stop(c->loop, &c->run.io);
    close(c->run.fd);
    c->run.fd = -1;
}

/* Called when output or exit status arrives; finishes once both are in. */
static void maybe_complete(struct tl_kube_creds *c)
{
    struct run *r = &c->run;
    if (r->fd >= 0 || !r->exited)
        return;
    stop_run(c);
    char err[512];
    struct tl_kube_exec_credential cred = {0};
    enum tl_err result = judge(c, r->out, r->len, r->status, r->timed_out, r->too_big,
                               r->read_errno, &cred, err, sizeof(err));
    free(r->out);
    *r = (struct run){.fd = -1};
    if (result == TL_OK) {
        apply(c, &cred);
        TL_DEBUG("exec credential refreshed", TL_STR("plugin", plugin_name(c)));
    }
    else {
        TL_WARN("exec credential refresh failed; keeping the old credential", TL_STR("error", err));
        c->failures++;
        if (c->expiry > 0) {
            double delay = RETRY_DELAY_MIN * pow(2, fmin(c->failures - 1, 8));
            arm_refresh(c, fmin(delay, RETRY_DELAY_MAX));
        }
    }
    /* Last: the callback may destroy creds. */
    if (c->cb)
        c->cb(c, result, c->cb_arg);
}

static void kill_run(struct tl_kube_creds *c)
{
    (void)kill(-c->run.pid, SIGKILL);
    if (c->run.fd >= 0)
        close_pipe(c);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct tl_kube_creds *c = w->data;
    struct run *r = &c->run;
    for (;;) {
        ssize_t got = read_some(r->fd, &r->out, &r->len, &r->cap, TL_KUBE_CREDS_EXEC_OUTPUT_MAX);
        if (r->len > TL_KUBE_CREDS_EXEC_OUTPUT_MAX) {
            r->too_big = true;
            kill_run(c);
            break;
        }
        if (got > 0)
            continue;
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (got < 0)
            r->read_errno = errno;
        close_pipe(c);
        break;
    }
    maybe_complete(c);
}

static void child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
    struct tl_kube_creds *c = w->data;
    ev_child_stop(loop, w);
    c->run.exited = true;
    c->run.status = w->rstatus;
    maybe_complete(c);
}

static void reaper_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct tl_kube_creds *c = w->data;
    int status = 0;
    pid_t r = waitpid(c->run.pid, &status, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR))
        return;
    ev_timer_stop(loop, w);
    c->run.exited = true;
    c->run.status = r == c->run.pid ? status : 0;
    maybe_complete(c);
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct tl_kube_creds *c = w->data;
    c->run.timed_out = true;
    kill_run(c);
    maybe_complete(c);
}

static void notify_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct tl_kube_creds *c = w->data;
    if (c->cb)
        c->cb(c, c->notify_result, c->cb_arg);
}

/*
 * Starts a background run. Never calls the callback itself (it may run inside the caller's own
 * code, as from tl_kube_creds_invalidate): a failure to start is reported from the loop.
 */
static void start_run(struct tl_kube_creds *c)
{
    if (c->run.pid > 0 || ev_is_active(&c->notify))
        return;
    char err[512];
    pid_t pid = 0;
    int fd = -1;
    enum tl_err result = spawn_plugin(c, &pid, &fd, err, sizeof(err));
    if (result != TL_OK) {
        TL_WARN("exec credential refresh failed; keeping the old credential", TL_STR("error", err));
        c->failures++;
        if (c->expiry > 0)
            arm_refresh(c, RETRY_DELAY_MAX);
        c->notify_result = result;
        start_timer(c, &c->notify, 0.);
        return;
    }
    struct run *r = &c->run;
    *r = (struct run){.pid = pid, .fd = fd};
    ev_io_init(&r->io, io_cb, fd, EV_READ);
    r->io.data = c;
    ev_io_start(c->loop, &r->io);
    /* libev reaps every child on the default loop; only there is ev_child reliable. */
    ev_child_init(&r->child, child_cb, pid, 0);
    r->child.data = c;
    ev_timer_init(&r->reaper, reaper_cb, REAP_POLL_INTERVAL, REAP_POLL_INTERVAL);
    r->reaper.data = c;
    if (ev_is_default_loop(c->loop))
        ev_child_start(c->loop, &r->child);
    else
        ev_timer_start(c->loop, &r->reaper);
    ev_timer_init(&r->timeout, timeout_cb, c->exec_timeout, 0.);
    r->timeout.data = c;
    start_timer(c, &r->timeout, c->exec_timeout);
}

static void refresh_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct tl_kube_creds *c = w->data;
    /* A one-shot timer is already stopped; undo the unref that arming did. */
    ev_ref(loop);
    c->refresh_armed = false;
    start_run(c);
}

/* KUBERNETES_EXEC_INFO, as client-go sets it: the ExecCredential request with its spec. */
static enum tl_err build_exec_info(struct tl_kube_creds *c, char *errbuf, size_t errlen)
{
    const struct tl_kube_config *cfg = c->cfg;
    const struct tl_kube_exec *x = cfg->exec;
    enum tl_err result = TL_ENOMEM;
    char *json = NULL;
    char *ca = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *spec = cJSON_AddObjectToObject(root, "spec");
    if (!root || !spec || !cJSON_AddStringToObject(root, "apiVersion", x->api_version) ||
        !cJSON_AddStringToObject(root, "kind", "ExecCredential") ||
        !cJSON_AddBoolToObject(spec, "interactive", false))
        goto out;
    if (x->provide_cluster_info) {
        cJSON *cluster = cJSON_AddObjectToObject(spec, "cluster");
        if (!cluster || !cJSON_AddStringToObject(cluster, "server", cfg->server) ||
            (cfg->tls_server_name &&
             !cJSON_AddStringToObject(cluster, "tls-server-name", cfg->tls_server_name)) ||
            (cfg->insecure_skip_tls_verify &&
             !cJSON_AddBoolToObject(cluster, "insecure-skip-tls-verify", true)) ||
            (cfg->proxy_url && !cJSON_AddStringToObject(cluster, "proxy-url", cfg->proxy_url)))
            goto out;
        if (c->ca && (!(ca = tl_base64_encode(c->ca, c->ca_len)) ||
                      !cJSON_AddStringToObject(cluster, "certificate-authority-data", ca)))
            goto out;
        if (x->cluster_config) {
            cJSON *config = cJSON_Parse(x->cluster_config);
            if (!config || !cJSON_AddItemToObject(cluster, "config", config)) {
                cJSON_Delete(config);
                goto out;
            }
        }
    }
    if (!(json = cJSON_PrintUnformatted(root)))
        goto out;
    size_t n = strlen(EXEC_INFO_VAR) + strlen(json) + 2;
    if (!(c->exec_info_env = malloc(n)))
        goto out;
    (void)snprintf(c->exec_info_env, n, "%s=%s", EXEC_INFO_VAR, json);
    result = TL_OK;
out:
    if (result != TL_OK)
        failf(errbuf, errlen, result, "out of memory");
    free(ca);
    free(json);
    cJSON_Delete(root);
    return result;
}

/* ---- lifetime and accessors ------------------------------------------------------------- */

static enum tl_err load_tls(struct tl_kube_creds *c, char *errbuf, size_t errlen)
{
    const struct tl_kube_config *cfg = c->cfg;
    enum tl_err result = TL_OK;
    if (cfg->ca_data) {
        if (!(c->ca = dup_bytes(cfg->ca_data, cfg->ca_data_len)))
            return failf(errbuf, errlen, TL_ENOMEM, "out of memory");
        c->ca_len = cfg->ca_data_len;
    }
    else if (cfg->ca_file && (result = read_pem("certificate-authority", cfg->ca_file, &c->ca,
                                                &c->ca_len, errbuf, errlen)) != TL_OK) {
        return result;
    }
    if (cfg->client_cert_data) {
        if (!(c->cert = dup_bytes(cfg->client_cert_data, cfg->client_cert_data_len)))
            return failf(errbuf, errlen, TL_ENOMEM, "out of memory");
        c->cert_len = cfg->client_cert_data_len;
    }
    else if (cfg->client_cert_file &&
             (result = read_pem("client-certificate", cfg->client_cert_file, &c->cert, &c->cert_len,
                                errbuf, errlen)) != TL_OK) {
        return result;
    }
    if (cfg->client_key_data) {
        if (!(c->key = dup_bytes(cfg->client_key_data, cfg->client_key_data_len)))
            return failf(errbuf, errlen, TL_ENOMEM, "out of memory");
        c->key_len = cfg->client_key_data_len;
    }
    else if (cfg->client_key_file && (result = read_pem("client-key", cfg->client_key_file, &c->key,
                                                        &c->key_len, errbuf, errlen)) != TL_OK) {
        return result;
    }
    return TL_OK;
}

static enum tl_err load_token(struct tl_kube_creds *c, char *errbuf, size_t errlen)
{
    const struct tl_kube_config *cfg = c->cfg;
    if (cfg->exec) {
        c->source = SRC_EXEC;
        struct tl_kube_exec_credential cred = {0};
        enum tl_err result = build_exec_info(c, errbuf, errlen);
        if (result == TL_OK)
            result = run_sync(c, &cred, errbuf, errlen);
        if (result == TL_OK)
            apply(c, &cred);
        return result;
    }
    if (cfg->token_file) {
        c->source = SRC_FILE;
        char err[512];
        enum tl_err result = reread_token_file(c, true, err, sizeof(err));
        if (result == TL_OK)
            return TL_OK;
        /* client-go falls back to the static token when the file cannot be read. */
        if (!cfg->token)
            return failf(errbuf, errlen, result, "%s", err);
        TL_WARN("token file unreadable; using the static token for now", TL_STR("error", err));
        c->warned = true;
    }
    if (cfg->token) {
        c->source = c->source == SRC_NONE ? SRC_STATIC : c->source;
        if (!(c->token = strdup(cfg->token)))
            return failf(errbuf, errlen, TL_ENOMEM, "out of memory");
    }
    return TL_OK;
}

struct tl_kube_creds *tl_kube_creds_create_ex(const struct tl_kube_config *cfg,
                                              struct ev_loop *loop,
                                              const struct tl_kube_creds_options *opts,
                                              char *errbuf, size_t errlen)
{
    if (!cfg || !loop) {
        failf(errbuf, errlen, TL_EINVAL, "credentials need a configuration and a loop");
        return NULL;
    }
    struct tl_kube_creds *c = calloc(1, sizeof(*c));
    if (!c) {
        failf(errbuf, errlen, TL_ENOMEM, "out of memory");
        return NULL;
    }
    c->cfg = cfg;
    c->loop = loop;
    c->run.fd = -1;
    c->exec_timeout =
        opts && opts->exec_timeout > 0 ? opts->exec_timeout : TL_KUBE_CREDS_EXEC_TIMEOUT;
    c->recheck = !opts || opts->token_recheck_interval == 0 ? TL_KUBE_CREDS_RECHECK_INTERVAL
                 : opts->token_recheck_interval < 0         ? 0
                                                            : opts->token_recheck_interval;
    ev_timer_init(&c->refresh, refresh_cb, 0., 0.);
    c->refresh.data = c;
    ev_timer_init(&c->notify, notify_cb, 0., 0.);
    c->notify.data = c;
    if (load_tls(c, errbuf, errlen) != TL_OK || load_token(c, errbuf, errlen) != TL_OK) {
        tl_kube_creds_destroy(c);
        return NULL;
    }
    return c;
}

struct tl_kube_creds *tl_kube_creds_create(const struct tl_kube_config *cfg, struct ev_loop *loop,
                                           char *errbuf, size_t errlen)
{
    return tl_kube_creds_create_ex(cfg, loop, NULL, errbuf, errlen);
}

void tl_kube_creds_destroy(struct tl_kube_creds *creds)
{
    if (!creds)
        return;
    disarm_refresh(creds);
    ev_timer_stop(creds->loop, &creds->notify);
    struct run *r = &creds->run;
    if (r->pid > 0) {
        stop_run(creds);
        (void)kill(-r->pid, SIGKILL);
        if (!r->exited) {
            while (waitpid(r->pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
    }
    free(r->out);
    free(creds->token);
    free(creds->ca);
    free(creds->cert);
    free(creds->key);
    free(creds->exec_cert);
    free(creds->exec_key);
    free(creds->exec_info_env);
    free(creds);
}

const char *tl_kube_creds_token(struct tl_kube_creds *creds)
{
    if (creds->source == SRC_FILE)
        recheck_token_file(creds, false);
    return creds->token;
}

static bool blob(const char *p, size_t n, const char **pem, size_t *len)
{
    if (!p)
        return false;
    *pem = p;
    *len = n;
    return true;
}

bool tl_kube_creds_client_cert(const struct tl_kube_creds *creds, const char **pem, size_t *len)
{
    if (creds->exec_cert)
        return blob(creds->exec_cert, creds->exec_cert_len, pem, len);
    return blob(creds->cert, creds->cert_len, pem, len);
}

bool tl_kube_creds_client_key(const struct tl_kube_creds *creds, const char **pem, size_t *len)
{
    if (creds->exec_cert)
        return blob(creds->exec_key, creds->exec_key_len, pem, len);
    return blob(creds->key, creds->key_len, pem, len);
}

bool tl_kube_creds_ca(const struct tl_kube_creds *creds, const char **pem, size_t *len)
{
    return blob(creds->ca, creds->ca_len, pem, len);
}

unsigned long tl_kube_creds_generation(const struct tl_kube_creds *creds)
{
    return creds->generation;
}

void tl_kube_creds_invalidate(struct tl_kube_creds *creds)
{
    if (creds->source == SRC_FILE)
        recheck_token_file(creds, true);
    else if (creds->source == SRC_EXEC)
        start_run(creds);
}

bool tl_kube_creds_refreshing(const struct tl_kube_creds *creds)
{
    return creds->run.pid > 0 || ev_is_active(&creds->notify);
}

void tl_kube_creds_on_refresh(struct tl_kube_creds *creds, tl_kube_creds_cb cb, void *arg)
{
    creds->cb = cb;
    creds->cb_arg = arg;
}
