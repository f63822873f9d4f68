#include "guardrails.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

bool tl_guard_window_open(const struct tl_policy *policy, double now, double *opens_in)
{
    if (!policy->approval.has_window)
        return true;
    time_t opens = 0;
    if (tl_cron_in_window(&policy->approval.window, (time_t)(policy->approval.window_ms / 1000),
                          (time_t)now, &opens, NULL))
        return true;
    if (opens_in)
        *opens_in = opens > 0 ? (double)opens - now : 3600;
    return false;
}

static void deny(struct tl_guard_result *out, const char *reason, double retry_after,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void deny(struct tl_guard_result *out, const char *reason, double retry_after,
                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof(out->message), fmt, ap);
    va_end(ap);
    out->allowed = false;
    out->reason = reason;
    out->retry_after = retry_after;
}

void tl_guard_check_auto(const struct tl_guard_input *in, struct tl_guard_result *out)
{
    memset(out, 0, sizeof(*out));
    const struct tl_policy *p = in->policy;
    double opens_in = 0;
    if (in->kill_switch) {
        deny(out, "KillSwitch", 0, "automatic changes are switched off for the whole cluster");
        return;
    }
    if (in->confidence < p->approval.min_confidence) {
        deny(out, "LowConfidence", 0, "confidence %s is below the policy's minimum %s",
             tl_confidence_name(in->confidence), tl_confidence_name(p->approval.min_confidence));
        return;
    }
    if (in->change_percent < p->approval.min_change_percent) {
        deny(out, "ChangeTooSmall", 0, "a %.0f%% change is below the policy's %d%% minimum",
             in->change_percent, p->approval.min_change_percent);
        return;
    }
    if (!tl_guard_window_open(p, in->now, &opens_in)) {
        deny(out, "OutsideWindow", opens_in,
             "waiting for the policy's window, which opens in %.0f "
             "minutes",
             ceil(opens_in / 60));
        return;
    }
    double cooldown = (double)p->approval.cooldown_ms / 1000;
    if (in->last_applied > 0 && in->now < in->last_applied + cooldown) {
        double left = in->last_applied + cooldown - in->now;
        deny(out, "Cooldown", left, "the last change was %.0f minutes ago; the cooldown is %.0f",
             (in->now - in->last_applied) / 60, cooldown / 60);
        return;
    }
    if (in->rolling) {
        deny(out, "RolloutInProgress", 30, "the workload is already rolling out");
        return;
    }
    if (in->pdb_allowed == 0) {
        deny(out, "DisruptionBudget", 60, "its PodDisruptionBudget allows no disruption now");
        return;
    }
    if (in->applying_in_namespace >= p->approval.max_per_namespace) {
        deny(out, "Concurrency", 30, "%d workload%s of this namespace already changing (limit %d)",
             in->applying_in_namespace, in->applying_in_namespace == 1 ? " is" : "s are",
             p->approval.max_per_namespace);
        return;
    }
    if (in->applying_in_cluster >= p->approval.max_cluster) {
        deny(out, "Concurrency", 30, "%d workloads already changing in the cluster (limit %d)",
             in->applying_in_cluster, p->approval.max_cluster);
        return;
    }
    out->allowed = true;
    out->reason = "Allowed";
    snprintf(out->message, sizeof(out->message), "every guardrail passes");
}

static double step_value(double current, double target, double max_percent)
{
    if (current <= 0 || target <= 0)
        return target;
    double bound = current * max_percent / 100;
    if (target > current + bound)
        return current + bound;
    if (target < current - bound)
        return current - bound;
    return target;
}

void tl_guard_step(const struct tl_resources *current, const struct tl_resources *recommended,
                   double max_percent, struct tl_resources *out)
{
    out->cpu_request =
        tl_round_cpu(step_value(current->cpu_request, recommended->cpu_request, max_percent));
    out->memory_request = tl_round_memory(
        step_value(current->memory_request, recommended->memory_request, max_percent));
    out->cpu_limit =
        recommended->cpu_limit > 0
            ? tl_round_cpu(step_value(current->cpu_limit, recommended->cpu_limit, max_percent))
            : 0;
    out->memory_limit = recommended->memory_limit > 0
                            ? tl_round_memory(step_value(current->memory_limit,
                                                         recommended->memory_limit, max_percent))
                            : 0;
    /* Never a limit below its request, which the API server would refuse. */
    if (out->cpu_limit > 0 && out->cpu_limit < out->cpu_request)
        out->cpu_limit = out->cpu_request;
    if (out->memory_limit > 0 && out->memory_limit < out->memory_request)
        out->memory_limit = out->memory_request;
}
