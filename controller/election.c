#include "election.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "leader.h"
#include "log.h"
#include "operator.h"

struct tl_election {
    struct tl_operator *op;
    struct tl_leader *leader;
    struct tl_kube_resource lease_resource;
    tl_election_fn on_change;
    ev_timer tick;
    struct tl_kube_call *call; /* the GET or write in flight */
    double decided_at;         /* monotonic time of the decision being written */
    bool releasing;
    bool released;
    char identity[TL_LEASE_HOLDER_MAX];
};

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

static void schedule(struct tl_election *e, double seconds)
{
    ev_timer_stop(e->op->loop, &e->tick);
    ev_timer_set(&e->tick, seconds > 0 ? seconds : 0.001, 0);
    ev_timer_start(e->op->loop, &e->tick);
}

static void started(void *ctx)
{
    struct tl_election *e = ctx;
    TL_INFO("became the leader", TL_STR("identity", e->identity));
    e->on_change(e->op, true);
}

static void stopped(void *ctx)
{
    struct tl_election *e = ctx;
    TL_WARN("stopped leading; writes stop now", TL_STR("identity", e->identity));
    e->on_change(e->op, false);
}

static void new_leader(const char *identity, void *ctx)
{
    (void)ctx;
    if (identity[0])
        TL_INFO("leader observed", TL_STR("identity", identity));
}

static void on_written(void *arg, struct tl_kube_result *res)
{
    struct tl_election *e = arg;
    e->call = NULL;
    if (e->releasing) {
        e->released = true;
        return;
    }
    struct tl_lease_record written;
    const char *field = NULL;
    if (res->err == TL_OK && tl_lease_from_json(res->body, &written, &field) == TL_OK) {
        tl_leader_written(e->leader, &written, e->decided_at);
    }
    else if (res->err != TL_ECONFLICT && res->err != TL_EAUTH) {
        TL_WARN("lease write failed", TL_INT("code", res->code), TL_ERRF(res->err));
    }
    else if (res->err == TL_EAUTH) {
        TL_ERROR("not allowed to write the Lease; check the operator's RBAC",
                 TL_INT("code", res->code));
    }
    schedule(e, 0.05);
}

static enum tl_err write_decision(struct tl_election *e, const struct tl_leader_decision *d)
{
    cJSON *body = NULL;
    enum tl_err result =
        tl_lease_to_json(e->op->opts->namespace, e->op->opts->lease_name, &d->lease, &body);
    if (result != TL_OK)
        return result;
    if (d->create)
        result = tl_kube_create(e->op->client, &e->lease_resource, e->op->opts->namespace, body,
                                on_written, e, &e->call);
    else
        result = tl_kube_update(e->op->client, &e->lease_resource, e->op->opts->namespace,
                                e->op->opts->lease_name, body, on_written, e, &e->call);
    cJSON_Delete(body);
    return result;
}

static void on_read(void *arg, struct tl_kube_result *res)
{
    struct tl_election *e = arg;
    e->call = NULL;
    struct tl_lease_record rec;
    const char *field = NULL;
    double now = mono_now();
    if (res->err == TL_ENOTFOUND) {
        tl_leader_observe(e->leader, NULL, now);
    }
    else if (res->err == TL_OK && tl_lease_from_json(res->body, &rec, &field) == TL_OK) {
        tl_leader_observe(e->leader, &rec, now);
    }
    else {
        /* Unreadable: decide on what was seen before; a leader then runs into its deadline. */
        TL_WARN("cannot read the Lease", TL_INT("code", res->code), TL_ERRF(res->err),
                TL_STR("field", field ? field : ""));
    }
    struct tl_leader_decision d;
    tl_leader_decide(e->leader, now, wall_us(), &d);
    e->decided_at = now;
    if (d.action == TL_LEADER_ACQUIRE || d.action == TL_LEADER_RENEW) {
        enum tl_err result = write_decision(e, &d);
        if (result == TL_OK)
            return;
        TL_WARN("cannot write the Lease", TL_ERRF(result));
    }
    schedule(e, d.next_check);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct tl_election *e = w->data;
    if (e->call || e->releasing)
        return;
    enum tl_err result = tl_kube_get(e->op->client, &e->lease_resource, e->op->opts->namespace,
                                     e->op->opts->lease_name, on_read, e, &e->call);
    if (result != TL_OK)
        schedule(e, e->op->opts->retry_period);
}

enum tl_err tl_election_start(struct tl_operator *op, tl_election_fn on_change,
                              struct tl_election **out)
{
    struct tl_election *e = calloc(1, sizeof(*e));
    if (!e)
        return TL_ENOMEM;
    e->op = op;
    e->on_change = on_change;
    /* Two replicas on one host must not share an identity: add the pid and a random part. */
    char host[128] = "tailor";
    if (op->opts->identity == NULL)
        gethostname(host, sizeof(host) - 1);
    snprintf(e->identity, sizeof(e->identity), "%s_%d_%08lx",
             op->opts->identity ? op->opts->identity : host, (int)getpid(),
             (unsigned long)(wall_us() & 0xffffffff));
    struct tl_leader_config cfg = {.identity = e->identity,
                                   .lease_duration = op->opts->lease_duration,
                                   .renew_deadline = op->opts->renew_deadline,
                                   .retry_period = op->opts->retry_period,
                                   .callbacks = {started, stopped, new_leader, e}};
    enum tl_err result =
        tl_kube_resource_builtin("coordination.k8s.io/v1", "leases", &e->lease_resource);
    if (result == TL_OK)
        result = tl_leader_create(&cfg, &e->leader);
    if (result != TL_OK) {
        free(e);
        return result;
    }
    ev_timer_init(&e->tick, on_tick, 0, 0);
    e->tick.data = e;
    ev_timer_start(op->loop, &e->tick);
    TL_INFO("electing a leader", TL_STR("lease", op->opts->lease_name),
            TL_STR("identity", e->identity));
    *out = e;
    return TL_OK;
}

bool tl_election_leading(const struct tl_election *e)
{
    return e && tl_leader_is_leader(e->leader);
}

void tl_election_destroy(struct tl_election *e, double timeout)
{
    if (e == NULL)
        return;
    ev_timer_stop(e->op->loop, &e->tick);
    tl_kube_call_cancel(e->call);
    e->call = NULL;
    struct tl_leader_decision d;
    if (tl_leader_release(e->leader, wall_us(), &d) == TL_OK) {
        e->releasing = true;
        if (write_decision(e, &d) == TL_OK) {
            double deadline = mono_now() + timeout;
            while (!e->released && mono_now() < deadline)
                ev_run(e->op->loop, EVRUN_ONCE);
            if (e->released)
                TL_INFO("lease released", TL_STR("identity", e->identity));
            tl_kube_call_cancel(e->call);
        }
    }
    tl_leader_destroy(e->leader);
    free(e);
}
