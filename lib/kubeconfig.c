#include "kubeconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base64.h"
#include "log.h"
#include "yaml_json.h"

#define EXEC_EXTENSION "client.authentication.k8s.io/exec"
#define EXEC_V1        "client.authentication.k8s.io/v1"
#define EXEC_V1BETA1   "client.authentication.k8s.io/v1beta1"
/* Service-account files are tiny; a bound token is a few KiB. */
#define SA_FILE_MAX ((size_t)1 << 20)

/*
 * One named entry of a kubeconfig file, read for shape only (what kubectl's decoder checks). The
 * meaning of the one cluster and user a context picks is checked later, by check_cluster and
 * check_user, because kubectl too accepts nonsense in entries nobody uses.
 */
struct entry {
    char *name;
    size_t index;
    struct tl_kube_config *cfg; /* clusters: the cluster fields; users: the user fields */
    char *exec_config;          /* clusters: JSON of the exec extension */
    char *refusal;              /* users: what this user asks for that Tailor does not do */
    char *interactive_mode;     /* users: exec.interactiveMode as written */
    char *cluster;              /* contexts */
    char *user;                 /* contexts */
    char *namespace;            /* contexts */
};

struct entries {
    struct entry *v;
    size_t n;
};

struct kc_file {
    char *path; /* the name used in messages */
    struct entries clusters;
    struct entries users;
    struct entries contexts;
    char *current_context;
};

/* Messages about one file: "kubeconfig <file>: <field path>: <what>". */
struct reader {
    const char *file;
    char *dir; /* where relative paths start; NULL leaves them as written */
    char *errbuf;
    size_t errlen;
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

/* path names the field ("users[0].user.token"); what says what is wrong with it. */
static enum tl_err rfail(const struct reader *r, enum tl_err err, const char *path, const char *fmt,
                         ...) __attribute__((format(printf, 4, 5)));

static enum tl_err rfail(const struct reader *r, enum tl_err err, const char *path, const char *fmt,
                         ...)
{
    if (!r->errbuf || r->errlen == 0)
        return err;
    int w = path ? snprintf(r->errbuf, r->errlen, "kubeconfig %s: %s: ", r->file, path)
                 : snprintf(r->errbuf, r->errlen, "kubeconfig %s: ", r->file);
    size_t n = w < 0 ? 0 : (size_t)w < r->errlen ? (size_t)w : r->errlen - 1;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(r->errbuf + n, r->errlen - n, fmt, ap);
    va_end(ap);
    return err;
}

static enum tl_err nomem(const struct reader *r)
{
    return rfail(r, TL_ENOMEM, NULL, "out of memory");
}

/* ---- files ------------------------------------------------------------------------------ */

enum tl_err tl_kube_config_read_file(const char *path, size_t cap, char **out, size_t *len)
{
    enum tl_err result = TL_EIO;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? TL_ENOTFOUND : TL_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0)
        goto out;
    if (!S_ISREG(st.st_mode)) {
        errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        goto out;
    }
    if ((uintmax_t)st.st_size > cap) {
        result = TL_ETOOBIG;
        goto out;
    }
    /* The file may grow between fstat and read; never read past cap. */
    size_t size = (size_t)st.st_size + 1 <= cap ? (size_t)st.st_size + 1 : cap + 1;
    buf = malloc(size + 1);
    if (!buf) {
        result = TL_ENOMEM;
        goto out;
    }
    size_t n = 0;
    for (;;) {
        ssize_t got = read(fd, buf + n, size - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            goto out;
        if (got == 0)
            break;
        n += (size_t)got;
        if (n == size) {
            if (n > cap) {
                result = TL_ETOOBIG;
                goto out;
            }
            /* Grown since fstat but still under the cap: make room for the rest. */
            size_t bigger = size * 2 < cap + 1 ? size * 2 : cap + 1;
            char *grown = realloc(buf, bigger + 1);
            if (!grown) {
                result = TL_ENOMEM;
                goto out;
            }
            buf = grown;
            size = bigger;
        }
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
    result = TL_OK;
out:
    free(buf);
    int saved = errno; /* read_problem reports it */
    close(fd);
    errno = saved;
    return result;
}

/* A message for a failed tl_kube_config_read_file, using the errno it left. */
static const char *read_problem(enum tl_err err, size_t cap, char *buf, size_t len)
{
    switch (err) {
    case TL_ENOTFOUND:
        return "no such file";
    case TL_ETOOBIG:
        (void)snprintf(buf, len, "larger than %zu bytes", cap);
        return buf;
    case TL_ENOMEM:
        return "out of memory";
    default:
        return strerror(errno);
    }
}

static char *join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p && snprintf(p, n, "%s/%s", dir, name) < 0) {
        free(p);
        return NULL;
    }
    return p;
}

/* The directory part of path, as relative paths in that file are resolved by kubectl. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static enum tl_err resolve_path(const struct reader *r, char **path)
{
    if (!*path || !r->dir || (*path)[0] == '/' || strcmp(r->dir, ".") == 0)
        return TL_OK;
    const char *rel = *path;
    while (rel[0] == '.' && rel[1] == '/')
        rel += 2; /* "./x" -> "dir/x", as filepath.Join cleans it */
    char *joined = join_path(r->dir, rel);
    if (!joined)
        return nomem(r);
    free(*path);
    *path = joined;
    return TL_OK;
}

/* ---- typed fields ----------------------------------------------------------------------- */

/* "users[0].user" + "token" -> "users[0].user.token"; a top-level field has an empty path. */
static char *field_path(char *buf, size_t len, const char *path, const char *name)
{
    if (snprintf(buf, len, "%s%s%s", path, path[0] ? "." : "", name) < 0)
        buf[0] = '\0';
    return buf;
}

/* A string field; absent, null or "" leave *out untouched (NULL), as kubectl treats "" as unset. */
static enum tl_err get_string(const struct reader *r, const cJSON *obj, const char *path,
                              const char *name, char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    char fp[256];
    if (!v || cJSON_IsNull(v))
        return TL_OK;
    if (!cJSON_IsString(v))
        return rfail(r, TL_EINVAL, field_path(fp, sizeof(fp), path, name),
                     "expected a string (quote values YAML would read as numbers or booleans)");
    if (v->valuestring[0] == '\0')
        return TL_OK;
    char *s = strdup(v->valuestring);
    if (!s)
        return nomem(r);
    free(*out);
    *out = s;
    return TL_OK;
}

static enum tl_err get_bool(const struct reader *r, const cJSON *obj, const char *path,
                            const char *name, bool *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    char fp[256];
    if (!v || cJSON_IsNull(v))
        return TL_OK;
    if (!cJSON_IsBool(v))
        return rfail(r, TL_EINVAL, field_path(fp, sizeof(fp), path, name),
                     "expected true or false");
    *out = cJSON_IsTrue(v);
    return TL_OK;
}

/* An object or list field: *out is NULL when absent or null. */
static enum tl_err get_typed(const struct reader *r, const cJSON *obj, const char *path,
                             const char *name, bool list, const cJSON **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    char fp[256];
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return TL_OK;
    if (list ? !cJSON_IsArray(v) : !cJSON_IsObject(v))
        return rfail(r, TL_EINVAL, field_path(fp, sizeof(fp), path, name),
                     list ? "expected a list" : "expected a mapping");
    *out = v;
    return TL_OK;
}

/* A base64 []byte field, decoded. */
static enum tl_err get_data(const struct reader *r, const cJSON *obj, const char *path,
                            const char *name, char **out, size_t *out_len)
{
    char *text = NULL;
    char fp[256];
    enum tl_err result = get_string(r, obj, path, name, &text);
    if (result != TL_OK || !text)
        return result;
    char *data = NULL;
    size_t len = 0;
    result = tl_base64_decode(text, strlen(text), &data, &len);
    free(text);
    if (result == TL_ENOMEM)
        return nomem(r);
    if (result != TL_OK)
        return rfail(r, TL_EINVAL, field_path(fp, sizeof(fp), path, name), "invalid base64");
    free(*out);
    *out = data;
    *out_len = len;
    return TL_OK;
}

/* A list of strings, as a NULL-terminated array (never NULL on success). */
static enum tl_err get_string_list(const struct reader *r, const cJSON *obj, const char *path,
                                   const char *name, char ***out)
{
    const cJSON *list = NULL;
    char fp[256];
    enum tl_err result = get_typed(r, obj, path, name, true, &list);
    if (result != TL_OK)
        return result;
    size_t n = list ? (size_t)cJSON_GetArraySize(list) : 0;
    char **v = calloc(n + 1, sizeof(*v));
    if (!v)
        return nomem(r);
    size_t i = 0;
    const cJSON *item = NULL;
    cJSON_ArrayForEach(item, list)
    {
        if (!cJSON_IsString(item)) {
            char ip[300];
            (void)snprintf(ip, sizeof(ip), "%s[%zu]", field_path(fp, sizeof(fp), path, name), i);
            result = rfail(r, TL_EINVAL, ip, "expected a string");
            goto out;
        }
        if (!(v[i++] = strdup(item->valuestring))) {
            result = nomem(r);
            goto out;
        }
    }
    *out = v;
    v = NULL;
out:
    if (v) {
        for (size_t j = 0; j < n; j++)
            free(v[j]);
        free(v);
    }
    return result;
}

static void free_strv(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

/* ---- entries ---------------------------------------------------------------------------- */

static void entry_clear(struct entry *e)
{
    free(e->name);
    tl_kube_config_destroy(e->cfg);
    free(e->exec_config);
    free(e->refusal);
    free(e->interactive_mode);
    free(e->cluster);
    free(e->user);
    free(e->namespace);
}

static void entries_clear(struct entries *es)
{
    for (size_t i = 0; i < es->n; i++)
        entry_clear(&es->v[i]);
    free(es->v);
    es->v = NULL;
    es->n = 0;
}

static void kc_file_clear(struct kc_file *f)
{
    free(f->path);
    entries_clear(&f->clusters);
    entries_clear(&f->users);
    entries_clear(&f->contexts);
    free(f->current_context);
}

static enum tl_err read_cluster(const struct reader *r, const cJSON *c, const char *path,
                                struct entry *e)
{
    struct tl_kube_config *cfg = e->cfg;
    enum tl_err result;
    if ((result = get_string(r, c, path, "server", &cfg->server)) != TL_OK ||
        (result = get_string(r, c, path, "certificate-authority", &cfg->ca_file)) != TL_OK ||
        (result = get_data(r, c, path, "certificate-authority-data", &cfg->ca_data,
                           &cfg->ca_data_len)) != TL_OK ||
        (result = get_bool(r, c, path, "insecure-skip-tls-verify",
                           &cfg->insecure_skip_tls_verify)) != TL_OK ||
        (result = get_string(r, c, path, "tls-server-name", &cfg->tls_server_name)) != TL_OK ||
        (result = get_string(r, c, path, "proxy-url", &cfg->proxy_url)) != TL_OK ||
        (result = resolve_path(r, &cfg->ca_file)) != TL_OK)
        return result;
    const cJSON *exts = NULL;
    if ((result = get_typed(r, c, path, "extensions", true, &exts)) != TL_OK)
        return result;
    size_t i = 0;
    const cJSON *ext = NULL;
    cJSON_ArrayForEach(ext, exts)
    {
        char ep[256];
        (void)snprintf(ep, sizeof(ep), "%s.extensions[%zu]", path, i++);
        if (!cJSON_IsObject(ext))
            return rfail(r, TL_EINVAL, ep, "expected a mapping");
        char *name = NULL;
        if ((result = get_string(r, ext, ep, "name", &name)) != TL_OK)
            return result;
        bool exec = name && strcmp(name, EXEC_EXTENSION) == 0;
        free(name);
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(ext, "extension");
        if (exec && value && !cJSON_IsNull(value)) {
            free(e->exec_config);
            if (!(e->exec_config = cJSON_PrintUnformatted(value)))
                return nomem(r);
        }
    }
    return TL_OK;
}

static enum tl_err read_exec(const struct reader *r, const cJSON *x, const char *path,
                             struct entry *e)
{
    struct tl_kube_exec *exec = calloc(1, sizeof(*exec));
    if (!exec)
        return nomem(r);
    e->cfg->exec = exec;
    exec->interactive_mode = TL_KUBE_EXEC_NEVER;
    enum tl_err result;
    if ((result = get_string(r, x, path, "command", &exec->command)) != TL_OK ||
        (result = get_string(r, x, path, "apiVersion", &exec->api_version)) != TL_OK ||
        (result = get_string(r, x, path, "installHint", &exec->install_hint)) != TL_OK ||
        (result = get_string(r, x, path, "interactiveMode", &e->interactive_mode)) != TL_OK ||
        (result = get_bool(r, x, path, "provideClusterInfo", &exec->provide_cluster_info)) !=
            TL_OK ||
        (result = get_string_list(r, x, path, "args", &exec->args)) != TL_OK)
        return result;
    /* Only a command with a '/' is a path; a bare name is looked up in $PATH (client-go). */
    if (exec->command && strchr(exec->command, '/') &&
        (result = resolve_path(r, &exec->command)) != TL_OK)
        return result;
    const cJSON *env = NULL;
    if ((result = get_typed(r, x, path, "env", true, &env)) != TL_OK)
        return result;
    size_t n = env ? (size_t)cJSON_GetArraySize(env) : 0;
    if (!(exec->env = calloc(n + 1, sizeof(*exec->env))))
        return nomem(r);
    size_t i = 0;
    const cJSON *item = NULL;
    cJSON_ArrayForEach(item, env)
    {
        char ep[256];
        (void)snprintf(ep, sizeof(ep), "%s.env[%zu]", path, i);
        if (!cJSON_IsObject(item))
            return rfail(r, TL_EINVAL, ep, "expected a mapping with name and value");
        char *name = NULL;
        char *value = NULL;
        if ((result = get_string(r, item, ep, "name", &name)) != TL_OK ||
            (result = get_string(r, item, ep, "value", &value)) != TL_OK) {
            free(name);
            return result;
        }
        if (!name || strchr(name, '=')) {
            free(name);
            free(value);
            return rfail(r, TL_EINVAL, ep, "name: expected a variable name");
        }
        size_t len = strlen(name) + (value ? strlen(value) : 0) + 2;
        char *pair = malloc(len);
        if (pair)
            (void)snprintf(pair, len, "%s=%s", name, value ? value : "");
        free(name);
        free(value);
        if (!pair)
            return nomem(r);
        exec->env[i++] = pair;
    }
    return TL_OK;
}

static enum tl_err refuse(const struct reader *r, struct entry *e, const char *path,
                          const char *what)
{
    if (e->refusal)
        return TL_OK;
    size_t len = strlen(path) + strlen(what) + 3;
    if (!(e->refusal = malloc(len)))
        return nomem(r);
    (void)snprintf(e->refusal, len, "%s.%s", path, what);
    return TL_OK;
}

static enum tl_err read_user(const struct reader *r, const cJSON *u, const char *path,
                             struct entry *e)
{
    struct tl_kube_config *cfg = e->cfg;
    enum tl_err result;
    if ((result = get_string(r, u, path, "token", &cfg->token)) != TL_OK ||
        (result = get_string(r, u, path, "tokenFile", &cfg->token_file)) != TL_OK ||
        (result = get_string(r, u, path, "client-certificate", &cfg->client_cert_file)) != TL_OK ||
        (result = get_string(r, u, path, "client-key", &cfg->client_key_file)) != TL_OK ||
        (result = get_data(r, u, path, "client-certificate-data", &cfg->client_cert_data,
                           &cfg->client_cert_data_len)) != TL_OK ||
        (result = get_data(r, u, path, "client-key-data", &cfg->client_key_data,
                           &cfg->client_key_data_len)) != TL_OK ||
        (result = resolve_path(r, &cfg->token_file)) != TL_OK ||
        (result = resolve_path(r, &cfg->client_cert_file)) != TL_OK ||
        (result = resolve_path(r, &cfg->client_key_file)) != TL_OK)
        return result;
    const cJSON *x = NULL;
    char xp[256];
    if ((result = get_typed(r, u, path, "exec", false, &x)) != TL_OK)
        return result;
    if (x && (result = read_exec(r, x, field_path(xp, sizeof(xp), path, "exec"), e)) != TL_OK)
        return result;

    /* Things kubectl does that Tailor will not: refused if this user is chosen. */
    const cJSON *ap = NULL;
    if ((result = get_typed(r, u, path, "auth-provider", false, &ap)) != TL_OK)
        return result;
    if (ap) {
        char *name = NULL;
        if ((result = get_string(r, ap, field_path(xp, sizeof(xp), path, "auth-provider"), "name",
                                 &name)) != TL_OK)
            return result;
        char what[512];
        (void)snprintf(what, sizeof(what),
                       "auth-provider: the legacy \"%.64s\" auth provider is not supported; "
                       "use an exec plugin instead (gke-gcloud-auth-plugin for GKE, kubelogin "
                       "for Azure, or your OIDC provider's)",
                       name ? name : "");
        free(name);
        if ((result = refuse(r, e, path, what)) != TL_OK)
            return result;
    }
    static const char *const basic[] = {"username", "password"};
    for (size_t i = 0; i < sizeof(basic) / sizeof(basic[0]); i++) {
        if (cJSON_GetObjectItemCaseSensitive(u, basic[i]) &&
            (result = refuse(r, e, path,
                             "username/password: basic authentication is not supported; use a "
                             "token, a client certificate or an exec plugin")) != TL_OK)
            return result;
    }
    static const char *const impersonation[] = {"as", "as-uid", "as-groups", "as-user-extra"};
    for (size_t i = 0; i < sizeof(impersonation) / sizeof(impersonation[0]); i++) {
        char what[160];
        (void)snprintf(what, sizeof(what),
                       "%s: impersonation is not supported; grant the user Tailor's "
                       "permissions directly",
                       impersonation[i]);
        if (cJSON_GetObjectItemCaseSensitive(u, impersonation[i]) &&
            (result = refuse(r, e, path, what)) != TL_OK)
            return result;
    }
    return TL_OK;
}

static enum tl_err read_context(const struct reader *r, const cJSON *c, const char *path,
                                struct entry *e)
{
    enum tl_err result;
    if ((result = get_string(r, c, path, "cluster", &e->cluster)) != TL_OK ||
        (result = get_string(r, c, path, "user", &e->user)) != TL_OK ||
        (result = get_string(r, c, path, "namespace", &e->namespace)) != TL_OK)
        return result;
    return TL_OK;
}

enum kind { CLUSTERS, USERS, CONTEXTS };

static const struct {
    const char *list; /* "clusters" */
    const char *item; /* "cluster": the key holding the entry's body */
} kinds[] = {{"clusters", "cluster"}, {"users", "user"}, {"contexts", "context"}};

/* clusters:, users: or contexts: -- a list of {name, <item>: {...}} with unique names. */
static enum tl_err read_list(const struct reader *r, const cJSON *doc, enum kind kind,
                             struct entries *out)
{
    const cJSON *list = NULL;
    enum tl_err result = get_typed(r, doc, "", kinds[kind].list, true, &list);
    if (result != TL_OK || !list)
        return result;
    size_t n = (size_t)cJSON_GetArraySize(list);
    if (n == 0)
        return TL_OK;
    if (!(out->v = calloc(n, sizeof(*out->v))))
        return nomem(r);
    const cJSON *item = NULL;
    cJSON_ArrayForEach(item, list)
    {
        size_t i = out->n;
        struct entry *e = &out->v[out->n++];
        e->index = i;
        char path[64];
        char body_path[96];
        (void)snprintf(path, sizeof(path), "%s[%zu]", kinds[kind].list, i);
        (void)snprintf(body_path, sizeof(body_path), "%s.%s", path, kinds[kind].item);
        if (!cJSON_IsObject(item))
            return rfail(r, TL_EINVAL, path, "expected a mapping with name and %s",
                         kinds[kind].item);
        if ((result = get_string(r, item, path, "name", &e->name)) != TL_OK)
            return result;
        if (!e->name)
            return rfail(r, TL_EINVAL, path, "name: missing");
        for (size_t j = 0; j < i; j++) {
            if (strcmp(out->v[j].name, e->name) == 0)
                return rfail(r, TL_EINVAL, path, "name: \"%s\" is already used by %s[%zu]", e->name,
                             kinds[kind].list, j);
        }
        const cJSON *body = NULL;
        if ((result = get_typed(r, item, path, kinds[kind].item, false, &body)) != TL_OK)
            return result;
        if (kind != CONTEXTS && !(e->cfg = calloc(1, sizeof(*e->cfg))))
            return nomem(r);
        if (!body)
            continue;
        switch (kind) {
        case CLUSTERS:
            result = read_cluster(r, body, body_path, e);
            break;
        case USERS:
            result = read_user(r, body, body_path, e);
            break;
        case CONTEXTS:
            result = read_context(r, body, body_path, e);
            break;
        }
        if (result != TL_OK)
            return result;
    }
    return TL_OK;
}

/* Reads one kubeconfig document into f (which the caller clears, also on failure). */
static enum tl_err read_doc(const struct reader *r, const char *text, size_t len, struct kc_file *f)
{
    cJSON *docs = NULL;
    char yerr[256];
    enum tl_err result = tl_yaml_to_json(text, len, &docs, yerr, sizeof(yerr));
    if (result != TL_OK)
        return rfail(r, result, NULL, "%s", yerr);
    /* kubectl decodes the first document of a stream and ignores the rest. */
    const cJSON *doc = cJSON_GetArrayItem(docs, 0);
    if (!doc || cJSON_IsNull(doc))
        goto out;
    if (!cJSON_IsObject(doc)) {
        result = rfail(r, TL_EINVAL, NULL, "expected a mapping (apiVersion: v1, kind: Config)");
        goto out;
    }
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(doc, "kind");
    const cJSON *api = cJSON_GetObjectItemCaseSensitive(doc, "apiVersion");
    if (kind && !cJSON_IsNull(kind) &&
        (!cJSON_IsString(kind) ||
         (kind->valuestring[0] && strcmp(kind->valuestring, "Config") != 0))) {
        result = rfail(r, TL_EINVAL, "kind", "expected Config");
        goto out;
    }
    if (api && !cJSON_IsNull(api) &&
        (!cJSON_IsString(api) || (api->valuestring[0] && strcmp(api->valuestring, "v1") != 0))) {
        result = rfail(r, TL_EINVAL, "apiVersion", "expected v1");
        goto out;
    }
    if ((result = get_string(r, doc, "", "current-context", &f->current_context)) != TL_OK ||
        (result = read_list(r, doc, CLUSTERS, &f->clusters)) != TL_OK ||
        (result = read_list(r, doc, USERS, &f->users)) != TL_OK ||
        (result = read_list(r, doc, CONTEXTS, &f->contexts)) != TL_OK)
        goto out;
out:
    cJSON_Delete(docs);
    return result;
}

static enum tl_err read_text(const char *file, const char *dir_source, const char *text, size_t len,
                             struct kc_file *f, char *errbuf, size_t errlen)
{
    struct reader r = {.file = file, .errbuf = errbuf, .errlen = errlen};
    if (!(f->path = strdup(file)))
        return nomem(&r);
    if (dir_source && !(r.dir = dir_of(dir_source)))
        return nomem(&r);
    enum tl_err result = read_doc(&r, text, len, f);
    free(r.dir);
    return result;
}

/* ---- choosing the context --------------------------------------------------------------- */

static struct entry *find(struct kc_file *files, size_t nfiles, enum kind kind, const char *name,
                          const struct kc_file **where)
{
    for (size_t i = 0; i < nfiles; i++) {
        struct entries *es = kind == CLUSTERS ? &files[i].clusters
                             : kind == USERS  ? &files[i].users
                                              : &files[i].contexts;
        for (size_t j = 0; j < es->n; j++) {
            if (strcmp(es->v[j].name, name) == 0) {
                *where = &files[i];
                return &es->v[j];
            }
        }
    }
    return NULL;
}

/* "a:b:c", for messages about the merged files; NULL when out of memory. */
static char *joined_paths(const struct kc_file *files, size_t nfiles)
{
    size_t len = 1;
    for (size_t i = 0; i < nfiles; i++)
        len += strlen(files[i].path) + 1;
    char *s = malloc(len);
    if (!s)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < nfiles; i++) {
        int w = snprintf(s + o, len - o, "%s%s", i ? ":" : "", files[i].path);
        if (w > 0)
            o += (size_t)w;
    }
    s[o] = '\0';
    return s;
}

static bool valid_namespace(const char *ns)
{
    /* An RFC 1123 label, as Kubernetes requires of namespace names. */
    size_t n = strlen(ns);
    if (n == 0 || n > 63 || ns[0] == '-' || ns[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = ns[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

static enum tl_err check_cluster(const struct reader *r, const struct entry *e)
{
    char path[64];
    (void)snprintf(path, sizeof(path), "clusters[%zu].cluster", e->index);
    struct tl_kube_config *c = e->cfg;
    if (!c->server)
        return rfail(r, TL_EINVAL, path, "server: missing");
    if (strncmp(c->server, "https://", 8) != 0 && strncmp(c->server, "http://", 7) != 0)
        return rfail(r, TL_EINVAL, path, "server: \"%s\" is not an https:// or http:// URL",
                     c->server);
    const char *host = strstr(c->server, "://") + 3;
    if (*host == '\0' || *host == '/')
        return rfail(r, TL_EINVAL, path, "server: \"%s\" has no host", c->server);
    /* Request paths are appended to the server, so a trailing slash would double up. */
    size_t n = strlen(c->server);
    while (n > 0 && c->server[n - 1] == '/')
        c->server[--n] = '\0';
    if (c->ca_file && c->ca_data)
        return rfail(r, TL_EINVAL, path,
                     "certificate-authority and certificate-authority-data are both set; "
                     "use one");
    if (c->insecure_skip_tls_verify && (c->ca_file || c->ca_data))
        return rfail(r, TL_EINVAL, path,
                     "insecure-skip-tls-verify is set together with a certificate authority; "
                     "use one");
    return TL_OK;
}

static enum tl_err check_exec(const struct reader *r, const struct entry *e, const char *path)
{
    struct tl_kube_exec *x = e->cfg->exec;
    if (!x->command)
        return rfail(r, TL_EINVAL, path, "command: missing");
    if (!x->api_version)
        return rfail(r, TL_EINVAL, path, "apiVersion: missing (use %s)", EXEC_V1);
    if (strcmp(x->api_version, EXEC_V1) != 0 && strcmp(x->api_version, EXEC_V1BETA1) != 0)
        return rfail(r, TL_EINVAL, path, "apiVersion: \"%s\" is not supported; use %s or %s",
                     x->api_version, EXEC_V1, EXEC_V1BETA1);
    const char *mode = e->interactive_mode;
    if (!mode) {
        /* client-go defaults v1beta1 to IfAvailable and requires the field for v1. */
        if (strcmp(x->api_version, EXEC_V1) == 0)
            return rfail(r, TL_EINVAL, path, "interactiveMode: missing (required by %s; use Never)",
                         EXEC_V1);
        x->interactive_mode = TL_KUBE_EXEC_IF_AVAILABLE;
    }
    else if (strcmp(mode, "Never") == 0) {
        x->interactive_mode = TL_KUBE_EXEC_NEVER;
    }
    else if (strcmp(mode, "IfAvailable") == 0) {
        x->interactive_mode = TL_KUBE_EXEC_IF_AVAILABLE;
    }
    else if (strcmp(mode, "Always") == 0) {
        return rfail(r, TL_EINVAL, path,
                     "interactiveMode: Always needs a terminal, and Tailor never gives an exec "
                     "plugin one; use a plugin that can run with Never or IfAvailable");
    }
    else {
        return rfail(r, TL_EINVAL, path,
                     "interactiveMode: \"%s\" is not one of Never, IfAvailable, Always", mode);
    }
    return TL_OK;
}

static enum tl_err check_user(const struct reader *r, const struct entry *e)
{
    char path[64];
    (void)snprintf(path, sizeof(path), "users[%zu].user", e->index);
    const struct tl_kube_config *u = e->cfg;
    if (e->refusal)
        return rfail(r, TL_EINVAL, NULL, "%s", e->refusal);
    if (u->exec) {
        char xp[80];
        enum tl_err result = check_exec(r, e, field_path(xp, sizeof(xp), path, "exec"));
        if (result != TL_OK)
            return result;
        if (u->token || u->token_file)
            return rfail(r, TL_EINVAL, path, "exec and token/tokenFile are both set; use one");
    }
    if (u->client_cert_file && u->client_cert_data)
        return rfail(r, TL_EINVAL, path,
                     "client-certificate and client-certificate-data are both set; use one");
    if (u->client_key_file && u->client_key_data)
        return rfail(r, TL_EINVAL, path, "client-key and client-key-data are both set; use one");
    bool cert = u->client_cert_file || u->client_cert_data;
    bool key = u->client_key_file || u->client_key_data;
    if (cert != key)
        return rfail(r, TL_EINVAL, path, "%s is set without %s",
                     cert ? "a client certificate" : "a client key",
                     cert ? "its client-key" : "its client-certificate");
    return TL_OK;
}

#define MOVE(dst, src)                                                                             \
    do {                                                                                           \
        (dst) = (src);                                                                             \
        (src) = NULL;                                                                              \
    } while (0)

/*
 * Picks the context (the requested one, else the first non-empty current-context), checks its
 * cluster and user, and moves their fields into a new config. Entries are found in file order,
 * which is kubectl's "first file to define a name wins".
 */
static enum tl_err choose(struct kc_file *files, size_t nfiles, const char *context,
                          struct tl_kube_config **out, char *errbuf, size_t errlen)
{
    char *all = joined_paths(files, nfiles);
    if (!all)
        return failf(errbuf, errlen, TL_ENOMEM, "out of memory");
    enum tl_err result = TL_OK;
    struct tl_kube_config *cfg = NULL;
    const char *name = context && context[0] ? context : NULL;
    for (size_t i = 0; !name && i < nfiles; i++)
        name = files[i].current_context;
    if (!name) {
        result = failf(errbuf, errlen, TL_ENOTFOUND,
                       "kubeconfig %s: no context chosen: current-context is not set (use "
                       "--context or kubectl config use-context)",
                       all);
        goto out;
    }
    const struct kc_file *cf = NULL;
    struct entry *ctx = find(files, nfiles, CONTEXTS, name, &cf);
    if (!ctx) {
        result = failf(errbuf, errlen, TL_ENOTFOUND, "kubeconfig %s: context \"%s\" not found", all,
                       name);
        goto out;
    }
    struct reader r = {.file = cf->path, .errbuf = errbuf, .errlen = errlen};
    char cpath[64];
    (void)snprintf(cpath, sizeof(cpath), "contexts[%zu].context", ctx->index);
    if (!ctx->cluster) {
        result = rfail(&r, TL_EINVAL, cpath, "cluster: missing");
        goto out;
    }
    const struct kc_file *clf = NULL;
    struct entry *cluster = find(files, nfiles, CLUSTERS, ctx->cluster, &clf);
    if (!cluster) {
        result =
            rfail(&r, TL_ENOTFOUND, cpath, "cluster: \"%s\" not found in %s", ctx->cluster, all);
        goto out;
    }
    const struct kc_file *uf = NULL;
    struct entry *user = ctx->user ? find(files, nfiles, USERS, ctx->user, &uf) : NULL;
    if (ctx->user && !user) {
        result = rfail(&r, TL_ENOTFOUND, cpath, "user: \"%s\" not found in %s", ctx->user, all);
        goto out;
    }
    const char *ns = ctx->namespace ? ctx->namespace : "default";
    if (!valid_namespace(ns)) {
        result = rfail(&r, TL_EINVAL, cpath, "namespace: \"%s\" is not a valid namespace name", ns);
        goto out;
    }
    struct reader clr = {.file = clf->path, .errbuf = errbuf, .errlen = errlen};
    if ((result = check_cluster(&clr, cluster)) != TL_OK)
        goto out;
    if (user) {
        struct reader ur = {.file = uf->path, .errbuf = errbuf, .errlen = errlen};
        if ((result = check_user(&ur, user)) != TL_OK)
            goto out;
    }
    if (!(cfg = calloc(1, sizeof(*cfg))) || !(cfg->source = strdup(cf->path)) ||
        !(cfg->context_name = strdup(name)) || !(cfg->namespace = strdup(ns))) {
        result = failf(errbuf, errlen, TL_ENOMEM, "out of memory");
        goto out;
    }
    /* Each entry is used at most once, so its fields can move rather than be copied. */
    struct tl_kube_config *c = cluster->cfg;
    MOVE(cfg->server, c->server);
    MOVE(cfg->ca_file, c->ca_file);
    MOVE(cfg->ca_data, c->ca_data);
    cfg->ca_data_len = c->ca_data_len;
    cfg->insecure_skip_tls_verify = c->insecure_skip_tls_verify;
    MOVE(cfg->tls_server_name, c->tls_server_name);
    MOVE(cfg->proxy_url, c->proxy_url);
    if (user) {
        struct tl_kube_config *u = user->cfg;
        MOVE(cfg->token, u->token);
        MOVE(cfg->token_file, u->token_file);
        MOVE(cfg->client_cert_file, u->client_cert_file);
        MOVE(cfg->client_key_file, u->client_key_file);
        MOVE(cfg->client_cert_data, u->client_cert_data);
        cfg->client_cert_data_len = u->client_cert_data_len;
        MOVE(cfg->client_key_data, u->client_key_data);
        cfg->client_key_data_len = u->client_key_data_len;
        MOVE(cfg->exec, u->exec);
        if (cfg->exec)
            MOVE(cfg->exec->cluster_config, cluster->exec_config);
    }
    *out = cfg;
    cfg = NULL;
out:
    tl_kube_config_destroy(cfg);
    free(all);
    return result;
}

static void files_free(struct kc_file *files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        kc_file_clear(&files[i]);
    free(files);
}

enum tl_err tl_kube_config_parse(const char *yaml_text, size_t len, const char *source,
                                 const char *context, struct tl_kube_config **out, char *errbuf,
                                 size_t errlen)
{
    struct kc_file *f = calloc(1, sizeof(*f));
    if (!f)
        return failf(errbuf, errlen, TL_ENOMEM, "out of memory");
    enum tl_err result =
        read_text(source ? source : "<memory>", source, yaml_text, len, f, errbuf, errlen);
    if (result == TL_OK)
        result = choose(f, 1, context, out, errbuf, errlen);
    files_free(f, 1);
    return result;
}

/*
 * Reads and merges the files at paths. skip_missing is $KUBECONFIG's rule: a file that does not
 * exist is skipped, but at least one must.
 */
static enum tl_err load_files(char *const *paths, size_t n, bool skip_missing, const char *context,
                              struct tl_kube_config **out, char *errbuf, size_t errlen)
{
    struct kc_file *files = calloc(n ? n : 1, sizeof(*files));
    if (!files)
        return failf(errbuf, errlen, TL_ENOMEM, "out of memory");
    enum tl_err result = TL_OK;
    size_t nfiles = 0;
    for (size_t i = 0; i < n; i++) {
        char *text = NULL;
        size_t len = 0;
        result = tl_kube_config_read_file(paths[i], TL_KUBE_CONFIG_FILE_MAX, &text, &len);
        if (result == TL_ENOTFOUND && skip_missing)
            continue;
        if (result != TL_OK) {
            char why[64];
            result = failf(errbuf, errlen, result, "kubeconfig %s: %s", paths[i],
                           read_problem(result, TL_KUBE_CONFIG_FILE_MAX, why, sizeof(why)));
            goto out;
        }
        result = read_text(paths[i], paths[i], text, len, &files[nfiles++], errbuf, errlen);
        free(text);
        if (result != TL_OK)
            goto out;
    }
    if (nfiles == 0) {
        result = failf(errbuf, errlen, TL_ENOTFOUND,
                       "KUBECONFIG: none of its files exists (%zu listed)", n);
        goto out;
    }
    result = choose(files, nfiles, context, out, errbuf, errlen);
out:
    files_free(files, nfiles);
    return result;
}

/* Splits $KUBECONFIG on ':' into distinct non-empty paths (kubectl drops repeats). */
static enum tl_err split_list(const char *list, char ***out, size_t *n)
{
    size_t max = 1;
    for (const char *p = list; *p; p++)
        max += *p == ':';
    char **v = calloc(max + 1, sizeof(*v)); /* NULL-terminated for free_strv */
    if (!v)
        return TL_ENOMEM;
    size_t count = 0;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        bool seen = len == 0;
        for (size_t i = 0; !seen && i < count; i++)
            seen = strlen(v[i]) == len && strncmp(v[i], p, len) == 0;
        if (!seen && !(v[count++] = strndup(p, len))) {
            free_strv(v);
            return TL_ENOMEM;
        }
        if (!end)
            break;
        p = end + 1;
    }
    *out = v;
    *n = count;
    return TL_OK;
}

/* ---- in-cluster ------------------------------------------------------------------------- */

static bool in_cluster_env(void)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    return host && host[0] && port && port[0];
}

static void trim_right(char *s, size_t *len)
{
    size_t n = *len;
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    s[n] = '\0';
    *len = n;
}

/* The pod's service account, as rest.InClusterConfig reads it. */
static enum tl_err in_cluster(const char *sa_dir, struct tl_kube_config **out, char *errbuf,
                              size_t errlen)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !host[0] || !port || !port[0])
        return failf(errbuf, errlen, TL_ENOTFOUND,
                     "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set");
    char *end = NULL;
    errno = 0;
    long portnum = strtol(port, &end, 10);
    if (errno != 0 || *end != '\0' || portnum < 1 || portnum > 65535)
        return failf(errbuf, errlen, TL_EINVAL,
                     "in-cluster: KUBERNETES_SERVICE_PORT=\"%s\" is not a port number", port);
    enum tl_err result = TL_OK;
    char *text = NULL;
    size_t len = 0;
    struct tl_kube_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return failf(errbuf, errlen, TL_ENOMEM, "out of memory");
    /* An IPv6 address needs brackets in a URL (RFC 3986 section 3.2.2). */
    bool v6 = strchr(host, ':') && host[0] != '[';
    size_t n = strlen(host) + strlen(port) + 16;
    if (!(cfg->source = strdup("in-cluster")) || !(cfg->server = malloc(n)) ||
        !(cfg->token_file = join_path(sa_dir, "token")) ||
        !(cfg->ca_file = join_path(sa_dir, "ca.crt"))) {
        result = failf(errbuf, errlen, TL_ENOMEM, "out of memory");
        goto out;
    }
    (void)snprintf(cfg->server, n, v6 ? "https://[%s]:%ld" : "https://%s:%ld", host, portnum);

    result = tl_kube_config_read_file(cfg->token_file, SA_FILE_MAX, &text, &len);
    if (result != TL_OK) {
        char why[64];
        result = failf(errbuf, errlen, result, "in-cluster: %s: %s", cfg->token_file,
                       read_problem(result, SA_FILE_MAX, why, sizeof(why)));
        goto out;
    }
    trim_right(text, &len);
    if (len == 0) {
        result = failf(errbuf, errlen, TL_EINVAL, "in-cluster: %s: empty token", cfg->token_file);
        goto out;
    }
    cfg->token = text;
    text = NULL;

    /* client-go logs a missing CA bundle and goes on with the system roots; so do we. */
    if (access(cfg->ca_file, R_OK) != 0) {
        TL_WARN("in-cluster CA bundle unreadable; using the system roots",
                TL_STR("path", cfg->ca_file), TL_STR("error", strerror(errno)));
        free(cfg->ca_file);
        cfg->ca_file = NULL;
    }

    char *ns_path = join_path(sa_dir, "namespace");
    if (!ns_path) {
        result = failf(errbuf, errlen, TL_ENOMEM, "out of memory");
        goto out;
    }
    if (tl_kube_config_read_file(ns_path, SA_FILE_MAX, &text, &len) == TL_OK) {
        trim_right(text, &len);
        if (valid_namespace(text)) {
            cfg->namespace = text;
            text = NULL;
        }
        else {
            TL_WARN("in-cluster namespace file holds no valid namespace; using default",
                    TL_STR("path", ns_path));
        }
    }
    free(ns_path);
    if (!cfg->namespace && !(cfg->namespace = strdup("default"))) {
        result = failf(errbuf, errlen, TL_ENOMEM, "out of memory");
        goto out;
    }
    *out = cfg;
    cfg = NULL;
out:
    free(text);
    tl_kube_config_destroy(cfg);
    return result;
}

enum tl_err tl_kube_config_load(const struct tl_kube_config_options *opts,
                                struct tl_kube_config **out, char *errbuf, size_t errlen)
{
    static const struct tl_kube_config_options defaults = {0};
    if (!opts)
        opts = &defaults;
    const char *sa_dir = opts->service_account_dir;
    if (!sa_dir || !sa_dir[0])
        sa_dir = getenv("TAILOR_SA_DIR");
    if (!sa_dir || !sa_dir[0])
        sa_dir = TL_KUBE_SA_DIR;

    if (opts->kubeconfig) {
        char *one[] = {(char *)opts->kubeconfig};
        return load_files(one, 1, false, opts->context, out, errbuf, errlen);
    }
    char in_cluster_err[512] = "";
    if (opts->in_cluster_first && in_cluster_env()) {
        if (in_cluster(sa_dir, out, in_cluster_err, sizeof(in_cluster_err)) == TL_OK)
            return TL_OK;
        TL_WARN("in-cluster configuration unusable; trying kubeconfig files",
                TL_STR("error", in_cluster_err));
    }
    const char *list = getenv("KUBECONFIG");
    if (list && list[0]) {
        char **paths = NULL;
        size_t n = 0;
        if (split_list(list, &paths, &n) != TL_OK)
            return failf(errbuf, errlen, TL_ENOMEM, "out of memory");
        enum tl_err result = load_files(paths, n, true, opts->context, out, errbuf, errlen);
        free_strv(paths);
        return result;
    }
    if (!opts->context && !opts->in_cluster_first && in_cluster_env() &&
        in_cluster(sa_dir, out, in_cluster_err, sizeof(in_cluster_err)) == TL_OK)
        return TL_OK;
    const char *home = getenv("HOME");
    char *path = home && home[0] ? join_path(home, ".kube/config") : NULL;
    if (!path || access(path, F_OK) != 0) {
        free(path);
        return failf(errbuf, errlen, TL_ENOTFOUND,
                     "no Kubernetes configuration: --kubeconfig and $KUBECONFIG are not set, "
                     "~/.kube/config does not exist, and %s",
                     in_cluster_err[0] ? in_cluster_err
                                       : "this is not a pod (no KUBERNETES_SERVICE_HOST)");
    }
    char *one[] = {path};
    enum tl_err result = load_files(one, 1, false, opts->context, out, errbuf, errlen);
    free(path);
    return result;
}

void tl_kube_config_destroy(struct tl_kube_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->source);
    free(cfg->context_name);
    free(cfg->server);
    free(cfg->ca_file);
    free(cfg->ca_data);
    free(cfg->tls_server_name);
    free(cfg->proxy_url);
    free(cfg->token);
    free(cfg->token_file);
    free(cfg->client_cert_file);
    free(cfg->client_key_file);
    free(cfg->client_cert_data);
    free(cfg->client_key_data);
    if (cfg->exec) {
        free(cfg->exec->command);
        free_strv(cfg->exec->args);
        free_strv(cfg->exec->env);
        free(cfg->exec->api_version);
        free(cfg->exec->install_hint);
        free(cfg->exec->cluster_config);
        free(cfg->exec);
    }
    free(cfg->namespace);
    free(cfg);
}
