/* leader: Lease leader election (coordination.k8s.io/v1) as a pure state machine; Lease JSON. */
#ifndef TL_LEADER_H
#define TL_LEADER_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define TL_LEASE_HOLDER_MAX 256 /* bytes of holderIdentity, with the NUL */
#define TL_LEASE_RV_MAX     64  /* bytes of metadata.resourceVersion, with the NUL */
#define TL_MICROTIME_LEN    28  /* "2026-11-21T10:00:00.000000Z" and its NUL */

/* The part of a Lease that election reads and writes; a projection, not the whole object. */
struct tl_lease_record {
    char holder[TL_LEASE_HOLDER_MAX];       /* spec.holderIdentity; "" when nobody holds it */
    int32_t lease_duration_seconds;         /* spec.leaseDurationSeconds; 0 when unset */
    int64_t acquire_time_us;                /* spec.acquireTime, Unix microseconds; 0 when unset */
    int64_t renew_time_us;                  /* spec.renewTime, Unix microseconds; 0 when unset */
    int32_t lease_transitions;              /* spec.leaseTransitions */
    char resource_version[TL_LEASE_RV_MAX]; /* metadata.resourceVersion; "" before creation */
};

/* Called synchronously from tl_leader_* calls; they must not destroy the elector. */
struct tl_leader_callbacks {
    void (*started_leading)(void *ctx);
    /* Stop every write at once: another candidate may take over after the lease expires. */
    void (*stopped_leading)(void *ctx);
    /* A holder other than the last one reported; `identity` is borrowed for the call. */
    void (*new_leader)(const char *identity, void *ctx);
    void *ctx; /* borrowed */
};

/* Zero durations take client-go's defaults: 15 s, 10 s and 2 s. */
struct tl_leader_config {
    const char *identity;  /* required; copied; e.g. the pod name plus a random suffix */
    double lease_duration; /* how long a standby waits, unchanged lease observed, to take over */
    double renew_deadline; /* how long the leader keeps trying to renew before it gives up */
    double retry_period;   /* the pace of renewals and of acquisition attempts */
    struct tl_leader_callbacks callbacks;
};

struct tl_leader;

/*
 * Creates an elector. TL_EINVAL for a missing or too long identity or durations out of order
 * (lease_duration > renew_deadline > 1.2 * retry_period > 0, as client-go requires); TL_ENOMEM.
 * *out is written only on success; caller frees with tl_leader_destroy.
 */
enum tl_err tl_leader_create(const struct tl_leader_config *config, struct tl_leader **out);

/* NULL is a no-op. Does not call stopped_leading: release first if leading. */
void tl_leader_destroy(struct tl_leader *le);

/*
 * Records the Lease as just read from the API server (`observed` borrowed, copied; NULL when it
 * does not exist). `now` is the local monotonic clock in seconds. The elector remembers when the
 * record last changed by that clock: holders' timestamps are never compared with ours.
 */
void tl_leader_observe(struct tl_leader *le, const struct tl_lease_record *observed, double now);

enum tl_leader_action {
    TL_LEADER_STANDBY, /* another holder is live: write nothing, observe again later */
    TL_LEADER_ACQUIRE, /* write decision.lease: a create if decision.create, else an update */
    TL_LEADER_RENEW,   /* we lead: write decision.lease (an update) */
    TL_LEADER_LOST,    /* we led and can no longer be sure we do: stop writing now */
    TL_LEADER_RELEASE, /* from tl_leader_release: write decision.lease (an update) */
};

struct tl_leader_decision {
    enum tl_leader_action action;
    bool create;                  /* ACQUIRE of a Lease that does not exist yet */
    struct tl_lease_record lease; /* ACQUIRE/RENEW/RELEASE: the record to write, with the
                                     observed resourceVersion as the precondition of an update */
    double next_check;            /* seconds until the caller should observe and decide again */
};

/*
 * Decides, from the last observation, what to do at monotonic `now`; `wall_us` (Unix
 * microseconds) stamps acquireTime/renewTime in the record to write. Call it with no write in
 * flight. LOST calls stopped_leading before returning. *out is always written.
 */
void tl_leader_decide(struct tl_leader *le, double now, int64_t wall_us,
                      struct tl_leader_decision *out);

/*
 * The write of the last ACQUIRE or RENEW decision succeeded; `written` (borrowed) is the Lease the
 * server returned, with its new resourceVersion. Leadership counts from the `now` of that decide,
 * the moment the request left, which is never later than the moment the server stored it. Calls
 * started_leading when this begins our term. A write answered after a LOST does not restore it.
 */
void tl_leader_written(struct tl_leader *le, const struct tl_lease_record *written, double now);

/*
 * Gives the lease up on shutdown so a successor need not wait for it to expire: *out gets an
 * empty holder and a 1 s duration to write as an update. Leadership ends now (stopped_leading is
 * called) whether or not that write succeeds. TL_ESTATE if we do not lead; *out untouched then.
 */
enum tl_err tl_leader_release(struct tl_leader *le, int64_t wall_us,
                              struct tl_leader_decision *out);

bool tl_leader_is_leader(const struct tl_leader *le);

/* The holder last observed; "" if none. Borrowed, valid until the next call on `le`. */
const char *tl_leader_holder(const struct tl_leader *le);

/*
 * Renders a whole Lease for a create or an update: apiVersion, kind, metadata (name, namespace,
 * resourceVersion when set) and spec. Unset times and a zero duration are left out. *out is
 * written only on success; caller frees with cJSON_Delete. TL_EINVAL for missing names,
 * TL_ERANGE for a time outside years 1..9999, TL_ENOMEM.
 */
enum tl_err tl_lease_to_json(const char *ns, const char *name, const struct tl_lease_record *record,
                             cJSON **out);

/*
 * Reads the record from a Lease object (borrowed). Absent fields read as unset. On TL_EINVAL
 * (wrong type or unparsable time), TL_ERANGE (number out of range) or TL_ETOOBIG (string past its
 * cap), *field, if not NULL, names the offending field (a static string). *out is written only on
 * success.
 */
enum tl_err tl_lease_from_json(const cJSON *lease, struct tl_lease_record *out, const char **field);

/*
 * Formats Unix microseconds as a Kubernetes MicroTime, "2026-11-21T10:00:00.000000Z", into `buf`
 * (at least TL_MICROTIME_LEN bytes). TL_ERANGE outside years 1..9999, TL_ETOOBIG for a short buf.
 */
enum tl_err tl_microtime_format(int64_t us, char *buf, size_t size);

/*
 * Parses an RFC 3339 time ("...Z" or "...+hh:mm", with or without a fraction, which is cut to
 * microseconds) into Unix microseconds. TL_EINVAL for anything else; *us written only on success.
 */
enum tl_err tl_microtime_parse(const char *text, int64_t *us);

#endif
