/* policy_reconcile: writes an OptimizationPolicy's status: validity, counts, savings, overlaps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assign.h"
#include "json.h"
#include "log.h"
#include "operator.h"
#include "rec_status.h"

#define MAX_LOST 100

struct tally {
    struct tl_operator *op;
    const char *key; /* "NS/NAME" */
    struct tl_policy_ref self;
    long matched;
    long recommendations;
    double savings;
    cJSON *lost;
    size_t nlost;
    enum tl_workload_kind kind;
    bool nomem;
};

static bool count_assigned(void *arg, const char *key, void *value)
{
    (void)key;
    struct tally *t = arg;
    if (strcmp(value, t->key) == 0)
        t->matched++;
    return true;
}

static bool count_recs(void *arg, const struct tl_kube_store_item *item)
{
    struct tally *t = arg;
    const struct tl_rec_obj *rec = item->proj;
    if (rec && rec->policy_ns && rec->policy_name &&
        strncmp(t->key, rec->policy_ns, strlen(rec->policy_ns)) == 0 &&
        t->key[strlen(rec->policy_ns)] == '/' &&
        strcmp(t->key + strlen(rec->policy_ns) + 1, rec->policy_name) == 0) {
        t->recommendations++;
        t->savings += rec->savings_usd;
    }
    return true;
}

/* Workloads this policy selects but another policy won, with the winner's name. */
static bool find_lost(void *arg, const struct tl_kube_store_item *item)
{
    struct tally *t = arg;
    if (!item->proj || t->nlost >= MAX_LOST)
        return t->nlost < MAX_LOST;
    const struct tl_kube_store_item *nsitem =
        tl_informer_get(t->op->namespaces, "", item->namespace);
    const struct tl_namespace *ns = nsitem ? nsitem->proj : NULL;
    if (!tl_policy_selects(&t->self, t->op->opts->namespace, item->namespace, item->proj,
                           ns ? &ns->labels : NULL))
        return true;
    char wkey[600];
    snprintf(wkey, sizeof(wkey), "%s/%s/%s", item->namespace, tl_workload_kind_name(t->kind),
             item->name);
    const char *winner = tl_strmap_get(t->op->assignment, wkey);
    if (!winner || strcmp(winner, t->key) == 0)
        return true;
    cJSON *entry = cJSON_CreateObject();
    if (!entry || !cJSON_AddStringToObject(entry, "kind", tl_workload_kind_name(t->kind)) ||
        !cJSON_AddStringToObject(entry, "namespace", item->namespace) ||
        !cJSON_AddStringToObject(entry, "name", item->name) ||
        !cJSON_AddStringToObject(entry, "to", winner) || !cJSON_AddItemToArray(t->lost, entry)) {
        cJSON_Delete(entry);
        t->nomem = true;
        return false;
    }
    t->nlost++;
    return true;
}

static void on_written(void *arg, struct tl_kube_result *res)
{
    struct tally *t = arg;
    if (res->err == TL_ECONFLICT)
        TL_DEBUG("policy status update conflicted; retrying", TL_STR("policy", t->key));
    else if (res->err != TL_OK && res->err != TL_ENOTFOUND)
        TL_WARN("policy status update failed", TL_STR("policy", t->key), TL_INT("code", res->code),
                TL_STR("reason", res->status && res->status->message ? res->status->message
                                                                     : tl_strerror(res->err)));
    char key[600];
    snprintf(key, sizeof(key), "p/%s", t->key);
    tl_operator_finish(t->op, key, res->err == TL_ENOTFOUND ? TL_OK : res->err);
    free((char *)t->key);
    free(t);
}

/* Keeps lastTransitionTime when the condition's status is unchanged (metav1.Condition rules). */
static const char *transition_time(const struct tl_policy_obj *p, const char *type,
                                   const char *status, const char *now)
{
    for (size_t i = 0; i < p->nconditions; i++) {
        const struct tl_condition *c = &p->conditions[i];
        if (c->type && strcmp(c->type, type) == 0 && c->status && strcmp(c->status, status) == 0 &&
            c->last_transition_time)
            return c->last_transition_time;
    }
    return now;
}

static cJSON *build_status(struct tally *t, const struct tl_policy_obj *p, const char *now)
{
    const char *state = "True";
    const char *reason = "Analyzed";
    char message[700];
    const char *scope = p->valid ? tl_policy_scope_problem(&t->self, t->op->opts->namespace) : NULL;
    if (!p->valid) {
        state = "False";
        reason = "InvalidSpec";
        snprintf(message, sizeof(message), "%s", p->invalid_reason ? p->invalid_reason : "invalid");
    }
    else if (scope) {
        state = "False";
        reason = "OutOfScope";
        snprintf(message, sizeof(message), "%s (%s); this policy selects nothing", scope,
                 t->op->opts->namespace);
    }
    else {
        snprintf(message, sizeof(message),
                 "%ld workload%s selected, %ld recommendation%s; %zu lost to other policies",
                 t->matched, t->matched == 1 ? "" : "s", t->recommendations,
                 t->recommendations == 1 ? "" : "s", t->nlost);
    }
    char savings[32];
    snprintf(savings, sizeof(savings), "%.2f", t->savings);
    cJSON *status = cJSON_CreateObject();
    cJSON *conditions = cJSON_AddArrayToObject(status, "conditions");
    cJSON *ready = cJSON_CreateObject();
    if (!status || !conditions || !ready || !cJSON_AddItemToArray(conditions, ready) ||
        !cJSON_AddNumberToObject(status, "observedGeneration", (double)p->generation) ||
        !cJSON_AddNumberToObject(status, "matchedWorkloads", (double)t->matched) ||
        !cJSON_AddNumberToObject(status, "recommendations", (double)t->recommendations) ||
        !cJSON_AddStringToObject(status, "estimatedMonthlySavings", savings) ||
        !cJSON_AddStringToObject(ready, "type", "Ready") ||
        !cJSON_AddStringToObject(ready, "status", state) ||
        !cJSON_AddNumberToObject(ready, "observedGeneration", (double)p->generation) ||
        !cJSON_AddStringToObject(ready, "lastTransitionTime",
                                 transition_time(p, "Ready", state, now)) ||
        !cJSON_AddStringToObject(ready, "reason", reason) ||
        !cJSON_AddStringToObject(ready, "message", message)) {
        if (ready && !conditions)
            cJSON_Delete(ready);
        cJSON_Delete(status);
        return NULL;
    }
    if (t->nlost > 0) {
        if (tl_json_member_set(status, "lostWorkloads", t->lost) != TL_OK) {
            t->lost = NULL;
            cJSON_Delete(status);
            return NULL;
        }
        t->lost = NULL;
    }
    return status;
}

/* Compared by value: the server may order members differently from how they were written. */
static bool unchanged(const struct tl_policy_obj *p, const cJSON *desired)
{
    if (p->status_json == NULL)
        return false;
    cJSON *seen = cJSON_Parse(p->status_json);
    bool same = seen && tl_json_equal(seen, desired);
    cJSON_Delete(seen);
    return same;
}

void tl_reconcile_policy(struct tl_operator *op, const char *key)
{
    const char *nsname = key + 2;
    const char *slash = strchr(nsname, '/');
    char ns[254];
    if (!slash || (size_t)(slash - nsname) >= sizeof(ns)) {
        tl_operator_finish(op, key, TL_OK);
        return;
    }
    memcpy(ns, nsname, (size_t)(slash - nsname));
    ns[slash - nsname] = '\0';
    const struct tl_kube_store_item *item = tl_informer_get(op->policies, ns, slash + 1);
    if (!item || !item->proj) {
        tl_operator_finish(op, key, TL_OK); /* deleted: nothing to write */
        return;
    }
    const struct tl_policy_obj *p = item->proj;
    struct tally *t = calloc(1, sizeof(*t));
    if (!t || !(t->key = strdup(nsname)) || !(t->lost = cJSON_CreateArray())) {
        if (t)
            free((char *)t->key);
        free(t);
        tl_operator_finish(op, key, TL_ENOMEM);
        return;
    }
    t->op = op;
    t->self = (struct tl_policy_ref){item->namespace, item->name, p};
    if (p->valid) {
        tl_strmap_foreach(op->assignment, count_assigned, t);
        tl_kube_store_foreach(tl_informer_store(op->recs), count_recs, t);
        static const enum tl_workload_kind kinds[3] = {TL_KIND_DEPLOYMENT, TL_KIND_STATEFULSET,
                                                       TL_KIND_DAEMONSET};
        for (int i = 0; i < 3 && !t->nomem; i++) {
            t->kind = kinds[i];
            tl_kube_store_foreach(tl_informer_store(op->workloads[i]), find_lost, t);
        }
    }
    char now[32];
    tl_format_time(ev_now(op->loop), now, sizeof(now));
    cJSON *status = t->nomem ? NULL : build_status(t, p, now);
    cJSON_Delete(t->lost);
    t->lost = NULL;
    if (!status) {
        free((char *)t->key);
        free(t);
        tl_operator_finish(op, key, TL_ENOMEM);
        return;
    }
    if (unchanged(p, status)) {
        cJSON_Delete(status);
        free((char *)t->key);
        free(t);
        tl_operator_finish(op, key, TL_OK);
        return;
    }
    if (!p->valid)
        TL_WARN("policy is invalid", TL_STR("ns", item->namespace), TL_STR("name", item->name),
                TL_STR("reason", p->invalid_reason));
    cJSON *body = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(body, "metadata");
    enum tl_err result = TL_ENOMEM;
    if (body && meta && cJSON_AddStringToObject(body, "apiVersion", "tailor.dev/v1alpha1") &&
        cJSON_AddStringToObject(body, "kind", "OptimizationPolicy") &&
        cJSON_AddStringToObject(meta, "name", item->name) &&
        cJSON_AddStringToObject(meta, "namespace", item->namespace) &&
        cJSON_AddStringToObject(meta, "resourceVersion", item->resource_version)) {
        result = tl_json_member_set(body, "status", status); /* takes status in every case */
        status = NULL;
        if (result == TL_OK)
            result = tl_kube_update_status(op->client, &op->policy_resource, item->namespace,
                                           item->name, body, on_written, t, NULL);
    }
    cJSON_Delete(status);
    cJSON_Delete(body);
    if (result != TL_OK) {
        free((char *)t->key);
        free(t);
        tl_operator_finish(op, key, result);
    }
}
