#include "webhook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assign.h"
#include "httpd.h"
#include "json.h"
#include "log.h"
#include "objects.h"
#include "operator.h"

/* A review's answer: {apiVersion, kind, response: {uid, allowed, status?}}. */
static cJSON *answer(const char *uid, bool allowed, const char *message)
{
    cJSON *out = cJSON_CreateObject();
    cJSON *response = cJSON_AddObjectToObject(out, "response");
    if (!out || !response || !cJSON_AddStringToObject(out, "apiVersion", "admission.k8s.io/v1") ||
        !cJSON_AddStringToObject(out, "kind", "AdmissionReview") ||
        !cJSON_AddStringToObject(response, "uid", uid ? uid : "") ||
        !cJSON_AddBoolToObject(response, "allowed", allowed)) {
        cJSON_Delete(out);
        return NULL;
    }
    if (!allowed) {
        cJSON *status = cJSON_AddObjectToObject(response, "status");
        if (!status || !cJSON_AddNumberToObject(status, "code", 422) ||
            !cJSON_AddStringToObject(status, "reason", "Invalid") ||
            !cJSON_AddStringToObject(status, "message", message)) {
            cJSON_Delete(out);
            return NULL;
        }
    }
    return out;
}

cJSON *tl_webhook_review(const cJSON *review, const char *operator_ns)
{
    const cJSON *request = cJSON_GetObjectItemCaseSensitive(review, "request");
    const cJSON *uid = cJSON_GetObjectItemCaseSensitive(request, "uid");
    const char *uid_text = cJSON_IsString(uid) ? uid->valuestring : NULL;
    if (!uid_text)
        return answer(NULL, false, "not an AdmissionReview: request.uid is missing");
    const cJSON *object = cJSON_GetObjectItemCaseSensitive(request, "object");
    const cJSON *operation = cJSON_GetObjectItemCaseSensitive(request, "operation");
    if (cJSON_IsString(operation) && strcmp(operation->valuestring, "DELETE") == 0)
        return answer(uid_text, true, NULL);
    if (!cJSON_IsObject(object))
        return answer(uid_text, false, "request.object: expected the OptimizationPolicy");
    const cJSON *ns = tl_json_get(object, "metadata", "namespace", NULL);
    if (!cJSON_IsString(ns))
        ns = cJSON_GetObjectItemCaseSensitive(request, "namespace");
    struct tl_policy_obj *p = NULL;
    if (tl_policy_obj_from_json(object, &p) != TL_OK)
        return NULL;
    cJSON *out;
    if (!p->valid) {
        out = answer(uid_text, false, p->invalid_reason);
    }
    else {
        const cJSON *name = tl_json_get(object, "metadata", "name", NULL);
        struct tl_policy_ref ref = {cJSON_IsString(ns) ? ns->valuestring : "",
                                    cJSON_IsString(name) ? name->valuestring : "", p};
        const char *problem = tl_policy_scope_problem(&ref, operator_ns);
        char message[400];
        if (problem)
            snprintf(message, sizeof(message), "%s (%s)", problem, operator_ns);
        out = answer(uid_text, problem == NULL, problem ? message : NULL);
    }
    tl_policy_obj_free(p);
    return out;
}

static void serve_review(void *arg, struct tl_httpd_req *req)
{
    struct tl_operator *op = arg;
    size_t len = 0;
    const char *body = tl_httpd_req_body(req, &len);
    cJSON *review = NULL;
    char err[160];
    if (!body || tl_json_parse(body, len, len + 1, &review, err, sizeof(err)) != TL_OK) {
        tl_httpd_respond_error(req, 400, "the body is not an AdmissionReview in JSON");
        return;
    }
    cJSON *out = tl_webhook_review(review, op->opts->namespace);
    cJSON_Delete(review);
    char *text = out ? tl_json_print(out) : NULL;
    cJSON_Delete(out);
    if (!text) {
        tl_httpd_respond_error(req, 500, "out of memory");
        return;
    }
    tl_httpd_respond_owned(req, 200, "application/json", text, strlen(text));
}

enum tl_err tl_webhook_start(struct tl_operator *op)
{
    const char *addr = op->opts->webhook_addr;
    if (addr == NULL || strcmp(addr, "0") == 0)
        return TL_OK;
    struct tl_httpd_opts opts = {.bind = addr,
                                 .tls_cert_file = op->opts->webhook_cert_file,
                                 .tls_key_file = op->opts->webhook_key_file};
    enum tl_err r = tl_httpd_create(op->loop, &opts, &op->webhook_httpd);
    if (r == TL_OK)
        r = tl_httpd_route(op->webhook_httpd, "POST", TL_WEBHOOK_PATH, serve_review, op);
    if (r != TL_OK)
        TL_ERROR("cannot serve the admission webhook", TL_STR("address", addr), TL_ERRF(r));
    else
        TL_INFO("serving the admission webhook", TL_STR("address", addr),
                TL_INT("port", tl_httpd_port(op->webhook_httpd)));
    return r;
}

void tl_webhook_stop(struct tl_operator *op)
{
    tl_httpd_destroy(op->webhook_httpd);
    op->webhook_httpd = NULL;
}
