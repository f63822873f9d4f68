#include "export.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "kubeconfig.h"
#include "log.h"
#include "objects.h"
#include "scan.h"
#include "scan_output.h"
#include "yaml_json.h"

#define PATH_LEN 4096
/* The first line of every patch file export writes: how a later run knows its own files. */
#define PATCH_MARKER "# Tailor recommendation "

/* ---- Flags ---- */

enum {
    F_KUBECONFIG,
    F_CONTEXT,
    F_NAMESPACE,
    F_ALL,
    F_DIR,
    F_APPROVED_ONLY,
    F_IN_PLACE,
    F_HELP,
};

static const struct tl_cli_flag export_flags[] = {
    [F_KUBECONFIG] = {"kubeconfig", 0, true, "FILE",
                      "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)"},
    [F_CONTEXT] = {"context", 0, true, "NAME", "kubeconfig context (default: current-context)"},
    [F_NAMESPACE] = {"namespace", 'n', true, "NS",
                     "namespaces to export; repeat it or give a comma list"},
    [F_ALL] = {"all-namespaces", 'A', false, NULL, "every namespace (the default)"},
    [F_DIR] = {"dir", 0, true, "DIR",
               "write DIR/<namespace>/<kind>-<name>.yaml patches and "
               "DIR/<namespace>/kustomization.yaml"},
    [F_APPROVED_ONLY] = {"approved-only", 0, false, NULL,
                         "only Recommendations whose current revision is approved"},
    [F_IN_PLACE] = {"in-place", 0, false, NULL,
                    "edit the workloads in the FILEs given instead (see below)"},
    [F_HELP] = {"help", 'h', false, NULL, "show this help"},
};

#define NFLAGS (sizeof(export_flags) / sizeof(export_flags[0]))

void tl_export_usage(FILE *out)
{
    fputs("Usage: tailor export --dir DIR [flags]\n"
          "       tailor export --in-place [flags] FILE...\n"
          "\n"
          "Writes Tailor's Recommendations so a GitOps repository can carry the change instead\n"
          "of the operator writing the cluster. Needs only read access to Recommendations.\n"
          "\n"
          "With --dir, each Recommendation becomes a kustomize strategic-merge patch, listed\n"
          "under `patches` in DIR/<namespace>/kustomization.yaml: point its `resources` at your\n"
          "base. Later runs rewrite `patches` and keep the other fields of that file.\n"
          "\n"
          "With --in-place, the Deployments, StatefulSets and DaemonSets found in the FILEs get\n"
          "the recommended requests and limits. A file is re-written from its parsed form:\n"
          "comments, quoting, key spacing and anchors are NOT kept, and values are written as\n"
          "Kubernetes reads them (0644 becomes 420). Review the diff before committing it.\n"
          "\n"
          "Only Recommendations with usage history are exported, and without --approved-only\n"
          "only those that would change something (not UpToDate).\n"
          "\n"
          "Flags:\n",
          out);
    tl_cli_flags_usage(export_flags, NFLAGS, out);
}

enum tl_err tl_export_options_parse(int argc, char **argv, struct tl_export_options *out,
                                    char *errbuf, size_t errlen)
{
    struct tl_export_options o;
    memset(&o, 0, sizeof(o));
    bool all = false;
    enum tl_err result = TL_OK;
    for (int i = 0; i < argc && result == TL_OK;) {
        size_t which = 0;
        const char *value = NULL;
        result =
            tl_cli_flag_next(export_flags, NFLAGS, argc, argv, &i, &which, &value, errbuf, errlen);
        if (result == TL_ENOTFOUND) {
            const char **grown = realloc(o.files, (o.nfiles + 1) * sizeof(*grown));
            if (!grown) {
                result = TL_ENOMEM;
                break;
            }
            o.files = grown;
            o.files[o.nfiles++] = value;
            result = TL_OK;
            continue;
        }
        if (result != TL_OK)
            break;
        switch (which) {
        case F_KUBECONFIG:
            o.kubeconfig = value;
            break;
        case F_CONTEXT:
            o.context = value;
            break;
        case F_NAMESPACE:
            result = tl_scan_add_namespaces(value, &o.namespaces, &o.nnamespaces, errbuf, errlen);
            break;
        case F_ALL:
            all = true;
            break;
        case F_DIR:
            o.dir = value;
            break;
        case F_APPROVED_ONLY:
            o.approved_only = true;
            break;
        case F_IN_PLACE:
            o.in_place = true;
            break;
        case F_HELP:
            o.help = true;
            break;
        default:
            break;
        }
    }
    if (result == TL_OK && !o.help) {
        if (all && o.nnamespaces > 0) {
            snprintf(errbuf, errlen, "--namespace and --all-namespaces cannot be used together");
            result = TL_EINVAL;
        }
        else if (o.in_place && o.dir) {
            snprintf(errbuf, errlen, "--dir and --in-place cannot be used together");
            result = TL_EINVAL;
        }
        else if (o.in_place && o.nfiles == 0) {
            snprintf(errbuf, errlen, "--in-place needs the manifest files to edit");
            result = TL_EINVAL;
        }
        else if (!o.in_place && o.nfiles > 0) {
            snprintf(errbuf, errlen, "unexpected argument \"%s\" (files go with --in-place)",
                     o.files[0]);
            result = TL_EINVAL;
        }
        else if (!o.in_place && !o.dir) {
            snprintf(errbuf, errlen, "say where to write: --dir DIR, or --in-place FILE...");
            result = TL_EINVAL;
        }
        else if (o.dir && o.dir[0] == '\0') {
            snprintf(errbuf, errlen, "--dir: expected a directory");
            result = TL_EINVAL;
        }
    }
    if (result != TL_OK) {
        tl_export_options_free(&o);
        return result;
    }
    *out = o;
    return TL_OK;
}

void tl_export_options_free(struct tl_export_options *opts)
{
    if (opts == NULL)
        return;
    for (size_t i = 0; i < opts->nnamespaces; i++)
        free(opts->namespaces[i]);
    free(opts->namespaces);
    free(opts->files);
    memset(opts, 0, sizeof(*opts));
}

/* ---- Selecting and turning Recommendations into patches ---- */

static const char *string_at(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static bool is_workload_kind(const char *kind)
{
    enum tl_workload_kind k;
    return kind && tl_workload_kind_parse(kind, &k);
}

/* Containers with usage history are the ones Tailor actually sized. */
static bool sized(const cJSON *container)
{
    return cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(container, "usage"));
}

enum tl_export_verdict tl_export_select(const cJSON *rec, bool approved_only)
{
    const cJSON *target = tl_json_get(rec, "spec", "targetRef", NULL);
    const char *api_version = string_at(target, "apiVersion");
    if (!api_version || strcmp(api_version, "apps/v1") != 0 ||
        !is_workload_kind(string_at(target, "kind")) || !string_at(target, "name") ||
        !string_at(cJSON_GetObjectItemCaseSensitive(rec, "metadata"), "namespace"))
        return TL_EXPORT_NOT_WORKLOAD;
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(rec, "status");
    const cJSON *revision = cJSON_GetObjectItemCaseSensitive(status, "revision");
    const char *confidence = string_at(status, "confidence");
    bool any_sized = false;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(status, "containers"))
    {
        any_sized = any_sized || sized(c);
    }
    if (!cJSON_IsNumber(revision) || revision->valuedouble < 1 || !confidence ||
        strcmp(confidence, "None") == 0 || !any_sized)
        return TL_EXPORT_NO_ADVICE;
    if (approved_only) {
        const cJSON *approved = tl_json_get(rec, "spec", "approval", "approvedRevision", NULL);
        return cJSON_IsNumber(approved) && approved->valuedouble == revision->valuedouble
                   ? TL_EXPORT_TAKE
                   : TL_EXPORT_NOT_APPROVED;
    }
    const char *phase = string_at(status, "phase");
    if (phase && strcmp(phase, "UpToDate") == 0)
        return TL_EXPORT_UP_TO_DATE;
    return TL_EXPORT_TAKE;
}

static const char *container_list(const cJSON *container)
{
    const char *type = string_at(container, "type");
    return type && (strcmp(type, "Init") == 0 || strcmp(type, "Sidecar") == 0) ? "initContainers"
                                                                               : "containers";
}

/* requests/limits of the patch: every recommended value, and null for a limit the advice drops. */
static bool patch_resources(cJSON *resources, const cJSON *recommended)
{
    static const char *const groups[] = {"requests", "limits"};
    static const char *const names[] = {"cpu", "memory"};
    for (size_t g = 0; g < 2; g++) {
        const cJSON *from = cJSON_GetObjectItemCaseSensitive(recommended, groups[g]);
        cJSON *to = cJSON_AddObjectToObject(resources, groups[g]);
        if (!to)
            return false;
        for (size_t n = 0; n < 2; n++) {
            const char *value = string_at(from, names[n]);
            bool ok = value    ? cJSON_AddStringToObject(to, names[n], value) != NULL
                      : g == 1 ? cJSON_AddNullToObject(to, names[n]) != NULL
                               : true;
            if (!ok)
                return false;
        }
    }
    return true;
}

/* One container of the patch: the merge key "name" first, then the resources. */
static bool add_patch_container(cJSON *pod, const cJSON *c)
{
    const char *list = container_list(c);
    cJSON *array = cJSON_GetObjectItemCaseSensitive(pod, list);
    if (!array)
        array = cJSON_AddArrayToObject(pod, list);
    cJSON *entry = array ? cJSON_CreateObject() : NULL;
    if (!entry || !cJSON_AddItemToArray(array, entry)) {
        cJSON_Delete(entry);
        return false;
    }
    cJSON *resources = cJSON_AddStringToObject(entry, "name", string_at(c, "name"))
                           ? cJSON_AddObjectToObject(entry, "resources")
                           : NULL;
    return resources &&
           patch_resources(resources, cJSON_GetObjectItemCaseSensitive(c, "recommended"));
}

cJSON *tl_export_patch(const cJSON *rec)
{
    if (tl_export_select(rec, false) == TL_EXPORT_NOT_WORKLOAD)
        return NULL;
    const cJSON *target = tl_json_get(rec, "spec", "targetRef", NULL);
    const char *ns = string_at(cJSON_GetObjectItemCaseSensitive(rec, "metadata"), "namespace");
    /* Members in the order people write them: apiVersion, kind, metadata, spec. */
    cJSON *patch = cJSON_CreateObject();
    bool ok = patch && cJSON_AddStringToObject(patch, "apiVersion", "apps/v1") &&
              cJSON_AddStringToObject(patch, "kind", string_at(target, "kind"));
    cJSON *meta = ok ? cJSON_AddObjectToObject(patch, "metadata") : NULL;
    ok = meta && cJSON_AddStringToObject(meta, "name", string_at(target, "name")) &&
         cJSON_AddStringToObject(meta, "namespace", ns);
    cJSON *spec = ok ? cJSON_AddObjectToObject(patch, "spec") : NULL;
    cJSON *template = cJSON_AddObjectToObject(spec, "template");
    cJSON *pod = cJSON_AddObjectToObject(template, "spec");
    ok = pod != NULL;
    size_t count = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, tl_json_get(rec, "status", "containers", NULL))
    {
        if (!ok || !string_at(c, "name") || !sized(c))
            continue;
        ok = add_patch_container(pod, c);
        count++;
    }
    if (!ok || count == 0) {
        cJSON_Delete(patch);
        return NULL;
    }
    return patch;
}

static cJSON *find_named(cJSON *array, const char *name)
{
    cJSON *item;
    cJSON_ArrayForEach(item, array)
    {
        const char *n = string_at(item, "name");
        if (n && strcmp(n, name) == 0)
            return item;
    }
    return NULL;
}

/* Sets (or, with value NULL, deletes) obj[key] as a quantity string; true when it changed. */
static bool set_quantity(cJSON *obj, const char *key, const char *value)
{
    cJSON *old = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!value) {
        if (!old)
            return false;
        cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
        return true;
    }
    bool memory = strcmp(key, "memory") == 0;
    /* Same amount written differently ("1000m" for "1"): leave the author's spelling. */
    if (old && tl_resource_value(old, memory) > 0) {
        cJSON probe;
        memset(&probe, 0, sizeof(probe));
        probe.type = cJSON_String;
        probe.valuestring = (char *)(uintptr_t)value;
        if (tl_resource_value(old, memory) == tl_resource_value(&probe, memory))
            return false;
    }
    return tl_json_member_set(obj, key, cJSON_CreateString(value)) == TL_OK;
}

/* An object member, created empty when absent; NULL when it is something else or no memory. */
static cJSON *object_member(cJSON *obj, const char *key)
{
    cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (item == NULL || cJSON_IsNull(item)) {
        cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
        return cJSON_AddObjectToObject(obj, key);
    }
    return cJSON_IsObject(item) ? item : NULL;
}

static bool apply_container(cJSON *container, const cJSON *recommended)
{
    cJSON *resources = object_member(container, "resources");
    if (!resources)
        return false;
    bool changed = false;
    static const char *const groups[] = {"requests", "limits"};
    static const char *const names[] = {"cpu", "memory"};
    for (size_t g = 0; g < 2; g++) {
        const cJSON *from = cJSON_GetObjectItemCaseSensitive(recommended, groups[g]);
        cJSON *to = object_member(resources, groups[g]);
        if (!to)
            continue;
        for (size_t n = 0; n < 2; n++)
            changed = set_quantity(to, names[n], string_at(from, names[n])) || changed;
        if (to->child == NULL)
            cJSON_DeleteItemFromObjectCaseSensitive(resources, groups[g]);
    }
    if (resources->child == NULL)
        cJSON_DeleteItemFromObjectCaseSensitive(container, "resources");
    return changed;
}

size_t tl_export_apply(cJSON *manifest, const cJSON *rec)
{
    cJSON *pod = tl_json_get(manifest, "spec", "template", "spec", NULL);
    size_t changed = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, tl_json_get(rec, "status", "containers", NULL))
    {
        const char *name = string_at(c, "name");
        if (!name || !sized(c))
            continue;
        cJSON *target = find_named(cJSON_GetObjectItemCaseSensitive(pod, container_list(c)), name);
        if (target && apply_container(target, cJSON_GetObjectItemCaseSensitive(c, "recommended")))
            changed++;
    }
    return changed;
}

/* A comment line from any text: line breaks become spaces. */
static void comment_text(FILE *out, const char *text)
{
    for (const char *p = text; *p; p++)
        fputc(*p == '\n' || *p == '\r' ? ' ' : *p, out);
}

enum tl_err tl_export_write_patch(FILE *out, const cJSON *rec, const cJSON *patch)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(rec, "metadata");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(rec, "status");
    const cJSON *revision = cJSON_GetObjectItemCaseSensitive(status, "revision");
    const char *ns = string_at(meta, "namespace");
    const char *name = string_at(meta, "name");
    const char *confidence = string_at(status, "confidence");
    const char *explanation = string_at(status, "explanation");
    const char *savings =
        string_at(cJSON_GetObjectItemCaseSensitive(status, "savings"), "monthlyUSD");
    fputs(PATCH_MARKER, out);
    comment_text(out, ns ? ns : "?");
    fputc('/', out);
    comment_text(out, name ? name : "?");
    fprintf(out, ", revision %.0f, confidence ",
            cJSON_IsNumber(revision) ? revision->valuedouble : 0);
    comment_text(out, confidence ? confidence : "?");
    fputs(".\n", out);
    if (explanation) {
        fputs("# ", out);
        comment_text(out, explanation);
        fputc('\n', out);
    }
    if (savings) {
        fputs("# Estimated savings: $", out);
        comment_text(out, savings);
        fputs("/month.\n", out);
    }
    fputs("# Written by `tailor export`; a null limit removes that limit.\n", out);
    enum tl_err result = tl_scan_output_yaml(patch, out);
    if (result == TL_OK && ferror(out))
        result = TL_EIO;
    return result;
}

enum tl_err tl_export_write_kustomization(FILE *out, const char *ns, const char *const *patches,
                                          size_t count, const cJSON *previous)
{
    cJSON *doc = cJSON_CreateObject();
    bool ok = doc &&
              cJSON_AddStringToObject(doc, "apiVersion", "kustomize.config.k8s.io/v1beta1") &&
              cJSON_AddStringToObject(doc, "kind", "Kustomization");
    const cJSON *kept = cJSON_IsObject(previous) ? previous : NULL;
    const cJSON *item;
    cJSON_ArrayForEach(item, kept)
    {
        if (!ok || !item->string || strcmp(item->string, "apiVersion") == 0 ||
            strcmp(item->string, "kind") == 0 || strcmp(item->string, "patches") == 0)
            continue;
        ok = tl_json_member_set(doc, item->string, tl_json_dup(item)) == TL_OK;
    }
    cJSON *list = ok ? cJSON_AddArrayToObject(doc, "patches") : NULL;
    ok = ok && list;
    for (size_t i = 0; ok && i < count; i++) {
        cJSON *entry = cJSON_CreateObject();
        ok = entry && cJSON_AddStringToObject(entry, "path", patches[i]) &&
             cJSON_AddItemToArray(list, entry);
        if (!ok)
            cJSON_Delete(entry);
    }
    if (!ok) {
        cJSON_Delete(doc);
        return TL_ENOMEM;
    }
    fputs("# Tailor's recommendations for namespace ", out);
    comment_text(out, ns);
    fputs(" as kustomize patches, written by `tailor export`.\n"
          "# Each run rewrites `patches` and keeps every other field.\n",
          out);
    if (!cJSON_GetObjectItemCaseSensitive(doc, "resources"))
        fputs("# Point `resources` at the manifests these patches apply to (your base), e.g.:\n"
              "# resources:\n"
              "# - ../../base\n",
              out);
    enum tl_err result = tl_scan_output_yaml(doc, out);
    cJSON_Delete(doc);
    if (result == TL_OK && ferror(out))
        result = TL_EIO;
    return result;
}

/* ---- Files ---- */

/* Kubernetes names are DNS subdomains: no slash, no "..": safe as one path component. */
static bool safe_component(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 253 || !isalnum((unsigned char)name[0]))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!(islower(c) || isdigit(c) || c == '-' || c == '.'))
            return false;
    }
    return true;
}

static enum tl_err make_dir(const char *path, char *errbuf, size_t errlen)
{
    char buf[PATH_LEN];
    int n = snprintf(buf, sizeof(buf), "%s", path);
    if (n < 0 || (size_t)n >= sizeof(buf)) {
        snprintf(errbuf, errlen, "%.300s...: path too long", path);
        return TL_ETOOBIG;
    }
    for (char *p = buf + 1;; p++) {
        bool end = *p == '\0';
        if (*p == '/' || end) {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                snprintf(errbuf, errlen, "cannot create directory %.300s: %s", buf,
                         strerror(errno));
                return TL_EIO;
            }
            if (end)
                break;
            *p = '/';
        }
    }
    return TL_OK;
}

/* dir/name into buf; false when it does not fit. */
static bool join_path(char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < len;
}

typedef enum tl_err (*writer_fn)(FILE *out, void *arg);

/* Writes path through a temporary file and a rename, so a reader never sees half a file; the
 * mode of a file that existed is kept. */
static enum tl_err write_atomic(const char *path, writer_fn writer, void *arg, char *errbuf,
                                size_t errlen)
{
    char tmp[PATH_LEN];
    int n = snprintf(tmp, sizeof(tmp), "%s.tailor-%ld.tmp", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        snprintf(errbuf, errlen, "%.300s...: path too long", path);
        return TL_ETOOBIG;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(errbuf, errlen, "cannot write %.300s: %s", tmp, strerror(errno));
        return TL_EIO;
    }
    enum tl_err result = writer(f, arg);
    struct stat st;
    if (result == TL_OK && stat(path, &st) == 0)
        fchmod(fileno(f), st.st_mode & 07777);
    if (fclose(f) != 0 && result == TL_OK)
        result = TL_EIO;
    if (result == TL_OK && rename(tmp, path) != 0)
        result = TL_EIO;
    if (result != TL_OK) {
        snprintf(errbuf, errlen, "cannot write %.300s: %s", path,
                 result == TL_EIO && errno ? strerror(errno) : tl_strerror(result));
        unlink(tmp);
    }
    return result;
}

/* ---- The command ---- */

struct export_run {
    const struct tl_export_options *opts;
    struct ev_loop *loop;
    struct tl_scan_session session;
    struct tl_kube_resource res;
    cJSON *recs; /* every Recommendation listed */
    size_t next_ns;
    bool failed;
    char error[1024];
};

static enum tl_err on_rec(void *arg, const cJSON *item)
{
    struct export_run *r = arg;
    cJSON *copy = tl_json_dup(item);
    if (!copy || !cJSON_AddItemToArray(r->recs, copy)) {
        cJSON_Delete(copy);
        return TL_ENOMEM;
    }
    return TL_OK;
}

static void list_next(struct export_run *r);

static void on_listed(void *arg, enum tl_err err, long code, const char *message)
{
    struct export_run *r = arg;
    if (err != TL_OK) {
        r->failed = true;
        if (code == 404)
            snprintf(r->error, sizeof(r->error),
                     "%s (is the Recommendation CRD, recommendations.tailor.dev, installed?)",
                     message);
        else
            snprintf(r->error, sizeof(r->error), "%s", message);
        ev_break(r->loop, EVBREAK_ALL);
        return;
    }
    list_next(r);
}

static void list_next(struct export_run *r)
{
    const struct tl_export_options *o = r->opts;
    size_t total = o->nnamespaces ? o->nnamespaces : 1;
    if (r->next_ns == total) {
        ev_break(r->loop, EVBREAK_ALL);
        return;
    }
    const char *ns = o->nnamespaces ? o->namespaces[r->next_ns] : NULL;
    r->next_ns++;
    enum tl_err result = tl_scan_list(&r->session, &r->res, ns, NULL, on_rec, on_listed, r);
    if (result != TL_OK) {
        r->failed = true;
        snprintf(r->error, sizeof(r->error), "cannot list Recommendations: %s",
                 tl_strerror(result));
        ev_break(r->loop, EVBREAK_ALL);
    }
}

struct patch_job {
    const cJSON *rec;
    const cJSON *patch;
};

static enum tl_err write_patch_job(FILE *out, void *arg)
{
    const struct patch_job *job = arg;
    return tl_export_write_patch(out, job->rec, job->patch);
}

struct kustomization_job {
    const char *ns;
    const char *const *names;
    size_t count;
    const cJSON *previous;
};

static enum tl_err write_kustomization_job(FILE *out, void *arg)
{
    const struct kustomization_job *job = arg;
    return tl_export_write_kustomization(out, job->ns, job->names, job->count, job->previous);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads a YAML file into its documents (a cJSON array); NULL with errbuf set on failure. */
static cJSON *read_yaml(const char *path, char *errbuf, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    enum tl_err result = tl_kube_config_read_file(path, TL_YAML_MAX_INPUT, &text, &len);
    if (result != TL_OK) {
        snprintf(errbuf, errlen, "cannot read %.300s: %s", path,
                 result == TL_EIO ? strerror(errno) : tl_strerror(result));
        return NULL;
    }
    cJSON *docs = NULL;
    char detail[300] = "";
    result = tl_yaml_to_json(text, len, &docs, detail, sizeof(detail));
    free(text);
    if (result != TL_OK) {
        snprintf(errbuf, errlen, "%.300s: %.300s", path, detail[0] ? detail : tl_strerror(result));
        return NULL;
    }
    return docs;
}

/* Removes the patch files an earlier run wrote in dir that this run did not write again. */
static void remove_stale(const char *dir, const char *const *written, size_t count)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0 ||
            strcmp(e->d_name, "kustomization.yaml") == 0)
            continue;
        bool mine = false;
        for (size_t i = 0; i < count && !mine; i++)
            mine = strcmp(written[i], e->d_name) == 0;
        if (mine)
            continue;
        char path[PATH_LEN];
        FILE *f = join_path(path, sizeof(path), dir, e->d_name) ? fopen(path, "r") : NULL;
        char first[sizeof(PATCH_MARKER)] = "";
        bool generated = f && fgets(first, sizeof(first), f) && strcmp(first, PATCH_MARKER) == 0;
        if (f)
            fclose(f);
        if (generated && unlink(path) == 0)
            fprintf(stderr,
                    "tailor export: removed %s: its Recommendation is no longer "
                    "exported\n",
                    path);
    }
    closedir(d);
}

/* A Recommendation chosen for export (borrowed from the list). */
struct picked {
    const cJSON *rec;
};

/* Writes one namespace's patches (the recs taken, in namespace order) and its kustomization. */
static enum tl_err write_namespace(const struct export_run *r, const char *ns,
                                   const struct picked *recs, size_t count, size_t *written,
                                   char *errbuf, size_t errlen)
{
    char dir[PATH_LEN];
    int n = snprintf(dir, sizeof(dir), "%s/%s", r->opts->dir, ns);
    if (n < 0 || (size_t)n >= sizeof(dir)) {
        snprintf(errbuf, errlen, "%.300s: path too long", r->opts->dir);
        return TL_ETOOBIG;
    }
    enum tl_err result = make_dir(dir, errbuf, errlen);
    char **names = calloc(count ? count : 1, sizeof(*names));
    size_t nnames = 0;
    if (!names)
        result = TL_ENOMEM;
    for (size_t i = 0; i < count && result == TL_OK; i++) {
        const cJSON *target = tl_json_get(recs[i].rec, "spec", "targetRef", NULL);
        const char *name = string_at(target, "name");
        enum tl_workload_kind kind;
        if (!safe_component(name) || !tl_workload_kind_parse(string_at(target, "kind"), &kind)) {
            fprintf(stderr,
                    "tailor export: skipped %s/%s: its target name is not a valid "
                    "Kubernetes name\n",
                    ns,
                    string_at(cJSON_GetObjectItemCaseSensitive(recs[i].rec, "metadata"), "name"));
            continue;
        }
        cJSON *patch = tl_export_patch(recs[i].rec);
        char *base = tl_rec_name(kind, name);
        char file[300];
        char path[PATH_LEN];
        if (!patch || !base) {
            cJSON_Delete(patch);
            free(base);
            result = TL_ENOMEM;
            break;
        }
        int len = snprintf(file, sizeof(file), "%s.yaml", base);
        free(base);
        if (len < 0 || (size_t)len >= sizeof(file) || !join_path(path, sizeof(path), dir, file)) {
            cJSON_Delete(patch);
            snprintf(errbuf, errlen, "%.300s: path too long", dir);
            result = TL_ETOOBIG;
            break;
        }
        struct patch_job job = {recs[i].rec, patch};
        result = write_atomic(path, write_patch_job, &job, errbuf, errlen);
        cJSON_Delete(patch);
        if (result == TL_OK && !(names[nnames++] = strdup(file)))
            result = TL_ENOMEM;
        if (result == TL_OK) {
            printf("%s\n", path);
            (*written)++;
        }
    }
    if (result == TL_OK && nnames > 0) {
        qsort(names, nnames, sizeof(*names), compare_strings);
        char path[PATH_LEN];
        cJSON *previous = NULL;
        if (!join_path(path, sizeof(path), dir, "kustomization.yaml")) {
            snprintf(errbuf, errlen, "%.300s: path too long", dir);
            result = TL_ETOOBIG;
        }
        else if (access(path, F_OK) == 0) {
            previous = read_yaml(path, errbuf, errlen);
            if (!previous)
                result = TL_EINVAL;
        }
        struct kustomization_job job = {ns, (const char *const *)names, nnames,
                                        cJSON_GetArrayItem(previous, 0)};
        if (result == TL_OK)
            result = write_atomic(path, write_kustomization_job, &job, errbuf, errlen);
        if (result == TL_OK) {
            printf("%s\n", path);
            remove_stale(dir, (const char *const *)names, nnames);
        }
        cJSON_Delete(previous);
    }
    else if (result == TL_ENOMEM) {
        snprintf(errbuf, errlen, "out of memory");
    }
    for (size_t i = 0; names && i < nnames; i++)
        free(names[i]);
    free(names);
    return result;
}

static const char *rec_ns(const cJSON *rec)
{
    return string_at(cJSON_GetObjectItemCaseSensitive(rec, "metadata"), "namespace");
}

static int export_dir(const struct export_run *r, const struct picked *taken, size_t count)
{
    size_t written = 0;
    char err[1024] = "";
    for (size_t i = 0; i < count;) {
        const char *ns = rec_ns(taken[i].rec);
        size_t j = i;
        while (j < count && strcmp(rec_ns(taken[j].rec), ns) == 0)
            j++;
        if (!safe_component(ns)) {
            i = j;
            continue;
        }
        if (write_namespace(r, ns, taken + i, j - i, &written, err, sizeof(err)) != TL_OK) {
            fprintf(stderr, "tailor export: %s\n", err);
            return TL_EXIT_FAIL;
        }
        i = j;
    }
    fprintf(stderr, "tailor export: %zu patch%s written under %s\n", written,
            written == 1 ? "" : "es", r->opts->dir);
    return TL_EXIT_OK;
}

/* The Recommendation for a workload of a manifest; NULL when none, or when it is ambiguous. */
static const cJSON *rec_for(const struct export_run *r, const struct picked *taken, size_t count,
                            const cJSON *doc, const char *path)
{
    const char *kind = string_at(doc, "kind");
    const char *api_version = string_at(doc, "apiVersion");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
    const char *name = string_at(meta, "name");
    const char *ns = string_at(meta, "namespace");
    if (!api_version || strcmp(api_version, "apps/v1") != 0 || !is_workload_kind(kind) || !name)
        return NULL;
    if (!ns && r->opts->nnamespaces == 1)
        ns = r->opts->namespaces[0];
    const cJSON *found = NULL;
    size_t matches = 0;
    for (size_t i = 0; i < count; i++) {
        const cJSON *target = tl_json_get(taken[i].rec, "spec", "targetRef", NULL);
        if (strcmp(string_at(target, "kind"), kind) != 0 ||
            strcmp(string_at(target, "name"), name) != 0 ||
            (ns && strcmp(rec_ns(taken[i].rec), ns) != 0))
            continue;
        found = taken[i].rec;
        matches++;
    }
    if (matches > 1) {
        fprintf(stderr,
                "tailor export: %s: %s %s has no namespace and several namespaces have a "
                "Recommendation for it; give -n NS\n",
                path, kind, name);
        return NULL;
    }
    return found;
}

struct docs_job {
    const cJSON *docs;
};

static enum tl_err write_docs_job(FILE *out, void *arg)
{
    const struct docs_job *job = arg;
    bool first = true;
    const cJSON *doc;
    cJSON_ArrayForEach(doc, job->docs)
    {
        if (cJSON_IsNull(doc))
            continue; /* an empty document: nothing to keep */
        if (!first)
            fputs("---\n", out);
        first = false;
        enum tl_err result = tl_scan_output_yaml(doc, out);
        if (result != TL_OK)
            return result;
    }
    return ferror(out) ? TL_EIO : TL_OK;
}

static int export_in_place(const struct export_run *r, const struct picked *taken, size_t count)
{
    char err[1024] = "";
    int code = TL_EXIT_OK;
    for (size_t f = 0; f < r->opts->nfiles; f++) {
        const char *path = r->opts->files[f];
        cJSON *docs = read_yaml(path, err, sizeof(err));
        if (!docs) {
            fprintf(stderr, "tailor export: %s\n", err);
            code = TL_EXIT_FAIL;
            continue;
        }
        size_t changed = 0;
        cJSON *doc;
        cJSON_ArrayForEach(doc, docs)
        {
            const cJSON *rec = rec_for(r, taken, count, doc, path);
            size_t n = rec ? tl_export_apply(doc, rec) : 0;
            if (n == 0)
                continue;
            changed++;
            printf("%s: %s %s/%s: %zu container%s\n", path, string_at(doc, "kind"), rec_ns(rec),
                   string_at(cJSON_GetObjectItemCaseSensitive(doc, "metadata"), "name"), n,
                   n == 1 ? "" : "s");
        }
        if (changed > 0) {
            struct docs_job job = {docs};
            if (write_atomic(path, write_docs_job, &job, err, sizeof(err)) != TL_OK) {
                fprintf(stderr, "tailor export: %s\n", err);
                code = TL_EXIT_FAIL;
            }
            else {
                fprintf(stderr,
                        "tailor export: re-wrote %s (comments and formatting are not "
                        "kept: review the diff)\n",
                        path);
            }
        }
        cJSON_Delete(docs);
    }
    return code;
}

static int compare_recs(const void *a, const void *b)
{
    const cJSON *x = ((const struct picked *)a)->rec;
    const cJSON *y = ((const struct picked *)b)->rec;
    int c = strcmp(rec_ns(x), rec_ns(y));
    return c ? c
             : strcmp(string_at(cJSON_GetObjectItemCaseSensitive(x, "metadata"), "name"),
                      string_at(cJSON_GetObjectItemCaseSensitive(y, "metadata"), "name"));
}

static int export_recs(const struct export_run *r)
{
    size_t total = tl_json_size(r->recs);
    struct picked *taken = calloc(total ? total : 1, sizeof(*taken));
    if (!taken) {
        fprintf(stderr, "tailor export: out of memory\n");
        return TL_EXIT_FAIL;
    }
    size_t count = 0;
    size_t skipped[TL_EXPORT_NOT_APPROVED + 1] = {0};
    const cJSON *rec;
    cJSON_ArrayForEach(rec, r->recs)
    {
        enum tl_export_verdict v = tl_export_select(rec, r->opts->approved_only);
        if (v == TL_EXPORT_TAKE &&
            string_at(cJSON_GetObjectItemCaseSensitive(rec, "metadata"), "name"))
            taken[count++].rec = rec;
        else
            skipped[v]++;
    }
    qsort(taken, count, sizeof(*taken), compare_recs);
    fprintf(stderr,
            "tailor export: %zu of %zu Recommendations to export (skipped: %zu without usage "
            "history, %zu up to date, %zu not approved, %zu not for a workload)\n",
            count, total, skipped[TL_EXPORT_NO_ADVICE], skipped[TL_EXPORT_UP_TO_DATE],
            skipped[TL_EXPORT_NOT_APPROVED], skipped[TL_EXPORT_NOT_WORKLOAD]);
    int code = r->opts->in_place ? export_in_place(r, taken, count) : export_dir(r, taken, count);
    free(taken);
    return code;
}

int tl_export_run(const struct tl_export_options *opts)
{
    struct export_run r;
    memset(&r, 0, sizeof(r));
    r.opts = opts;
    r.loop = ev_default_loop(0);
    tl_log_configure(TL_LOG_ERROR, TL_LOG_TEXT, NULL);
    char err[1024] = "";
    int code = TL_EXIT_FAIL;
    r.recs = cJSON_CreateArray();
    if (!r.recs ||
        tl_kube_resource_builtin("tailor.dev/v1alpha1", "recommendations", &r.res) != TL_OK) {
        fprintf(stderr, "tailor export: out of memory\n");
        goto out;
    }
    if (tl_scan_session_open(r.loop, opts->kubeconfig, opts->context, &r.session, err,
                             sizeof(err)) != TL_OK) {
        fprintf(stderr, "tailor export: %s\n", err);
        goto out;
    }
    list_next(&r);
    if (!r.failed)
        ev_run(r.loop, 0);
    if (r.failed) {
        fprintf(stderr, "tailor export: %s\n", r.error);
        goto out;
    }
    code = export_recs(&r);
out:
    tl_scan_session_close(&r.session);
    cJSON_Delete(r.recs);
    return code;
}
