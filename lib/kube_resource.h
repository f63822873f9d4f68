/* kube_resource: group/version/resource identities, REST paths, URL escaping, discovery lookup. */
#ifndef TL_KUBE_RESOURCE_H
#define TL_KUBE_RESOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "error.h"

/* One REST resource. Plain value: copy it freely. group is "" for the core group. */
struct tl_kube_resource {
    char group[254];
    char version[64];
    char resource[64]; /* plural, lower case: "deployments" */
    char kind[64];     /* "Deployment" */
    bool namespaced;
};

/* Splits an apiVersion ("apps/v1", "v1") into group and version. TL_EINVAL when malformed. */
enum tl_err tl_kube_resource_split_gv(const char *api_version, char *group, size_t group_len,
                                      char *version, size_t version_len);

/*
 * A resource of the built-in table (core, apps, batch, autoscaling, policy, coordination,
 * events.k8s.io, karpenter.sh, tailor.dev), looked up by apiVersion and kind or plural name.
 * TL_ENOTFOUND for anything else: use discovery then.
 */
enum tl_err tl_kube_resource_builtin(const char *api_version, const char *name,
                                     struct tl_kube_resource *out);

/*
 * Writes the REST path of a collection or object: /api/v1/namespaces/NS/pods/NAME/SUB or
 * /apis/GROUP/VERSION/RESOURCE/NAME. ns NULL or "" means all namespaces (or cluster-scoped); name
 * and subresource may be NULL. Namespace and name are escaped. TL_EINVAL for a namespaced name
 * without a namespace or a name that is "." or "..", TL_ETOOBIG when buf is too small.
 */
enum tl_err tl_kube_resource_path(const struct tl_kube_resource *res, const char *ns,
                                  const char *name, const char *subresource, char *buf, size_t len);

/* "/api/v1" or "/apis/GROUP/VERSION" for an apiVersion. */
enum tl_err tl_kube_discovery_path(const char *api_version, char *buf, size_t len);

/*
 * Percent-encodes everything but RFC 3986 unreserved characters. Appends to buf at *pos and
 * advances *pos; TL_ETOOBIG (buf unchanged past *pos's old NUL) when it does not fit.
 */
enum tl_err tl_kube_url_escape(const char *text, char *buf, size_t len, size_t *pos);

/*
 * Appends "key=value" (value escaped, '&' first when *pos > 0) to a query string at *pos. A NULL
 * or empty value adds nothing. TL_ETOOBIG when it does not fit.
 */
enum tl_err tl_kube_query_add(char *buf, size_t len, size_t *pos, const char *key,
                              const char *value);

/*
 * Finds name (plural resource name, kind, singular name or a short name) in an APIResourceList
 * (borrowed) for api_version. Subresources ("pods/status") are skipped. TL_ENOTFOUND when absent,
 * TL_EINVAL when list is not an APIResourceList.
 */
enum tl_err tl_kube_resource_from_discovery(const cJSON *list, const char *api_version,
                                            const char *name, struct tl_kube_resource *out);

#endif
