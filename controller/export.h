/* export: the `tailor export` command: Recommendations written as kustomize patches for a GitOps
 * repository, or into the workloads of manifest files in place. */
#ifndef TL_EXPORT_H
#define TL_EXPORT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "error.h"

/* The flags of `tailor export`. Strings are borrowed from argv; the arrays are owned. */
struct tl_export_options {
    const char *kubeconfig;
    const char *context;
    char **namespaces; /* owned; NULL: every namespace */
    size_t nnamespaces;
    const char *dir; /* --dir: where the patches go */
    bool approved_only;
    bool in_place;      /* --in-place: edit files instead */
    const char **files; /* owned array of borrowed strings: the files to edit */
    size_t nfiles;
    bool help;
};

/*
 * Parses the arguments after "export". On failure errbuf says why, nothing is left allocated and
 * *out is untouched; on success the caller frees with tl_export_options_free.
 */
enum tl_err tl_export_options_parse(int argc, char **argv, struct tl_export_options *out,
                                    char *errbuf, size_t errlen);
void tl_export_options_free(struct tl_export_options *opts);
void tl_export_usage(FILE *out);

/* Lists the Recommendations and writes them; returns the exit code (TL_EXIT_* of scan.h). */
int tl_export_run(const struct tl_export_options *opts);

/* ---- The pure parts, exposed for tests ---- */

/* Whether a Recommendation is exported, or why not. */
enum tl_export_verdict {
    TL_EXPORT_TAKE,
    TL_EXPORT_NOT_WORKLOAD, /* targets an HPA or a NodePool, or is malformed */
    TL_EXPORT_NO_ADVICE,    /* no revision yet, or no container has usage history */
    TL_EXPORT_UP_TO_DATE,   /* the advice is within minChangePercent of the current values */
    TL_EXPORT_NOT_APPROVED, /* --approved-only, and the current revision is not approved */
};

/* Decides for one Recommendation object (borrowed). */
enum tl_export_verdict tl_export_select(const cJSON *rec, bool approved_only);

/*
 * The kustomize strategic-merge patch of a Recommendation (borrowed) that tl_export_select
 * takes: apiVersion, kind, metadata name and namespace of the target, and for each container
 * with usage history its recommended requests and limits under spec.template.spec.containers
 * (initContainers for init and sidecar containers); a limit the advice drops is null, which
 * deletes it. Caller frees with cJSON_Delete; NULL when the object lacks what is needed.
 */
cJSON *tl_export_patch(const cJSON *rec);

/*
 * Sets the recommended resources of rec (borrowed) on the matching containers of a workload
 * manifest (edited in place): requests and limits of CPU and memory take the recommended values
 * and a limit the advice drops is deleted; other resources (ephemeral-storage, GPUs) stay.
 * Returns how many containers changed.
 */
size_t tl_export_apply(cJSON *manifest, const cJSON *rec);

/*
 * Writes the patch file's text: a comment naming the Recommendation, its revision and why, then
 * the patch as YAML. TL_EIO when writing fails.
 */
enum tl_err tl_export_write_patch(FILE *out, const cJSON *rec, const cJSON *patch);

/*
 * Writes kustomization.yaml's text listing the patch files (sorted by the caller) under
 * `patches`. previous (borrowed, may be NULL) is the file as it was: every field but apiVersion,
 * kind and patches is kept (the `resources` the user pointed at their base, above all); without
 * resources a comment says where to point them.
 */
enum tl_err tl_export_write_kustomization(FILE *out, const char *ns, const char *const *patches,
                                          size_t count, const cJSON *previous);

#endif
