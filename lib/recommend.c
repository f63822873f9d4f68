#include "recommend.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define HOUR 3600.0
#define DAY  86400.0
#define MIB  1048576.0
#define GIB  1073741824.0

/* Below this share of CFS periods throttled, observed CPU usage is taken as the real demand. */
#define THROTTLE_SIGNIFICANT 0.05
/* A memory limit keeps this much above the largest working set ever seen. */
#define MEMORY_LIMIT_MARGIN 1.10

void tl_recommend_policy_defaults(struct tl_recommend_policy *policy)
{
    memset(policy, 0, sizeof(*policy));
    policy->cpu = (struct tl_resource_rule){.percentile = 95, .headroom_percent = 15, .min = 0.01};
    policy->memory =
        (struct tl_resource_rule){.percentile = 99, .headroom_percent = 20, .min = 32 * MIB};
    policy->cpu_limit = TL_LIMIT_REMOVE;
    policy->memory_limit = TL_LIMIT_KEEP_RATIO;
    policy->oom_bump_percent = 20;
    policy->sample_interval = 60;
}

static const char *const confidence_names[] = {"None", "Low", "Medium", "High"};
static const char *const limit_mode_names[] = {"Remove", "KeepRatio", "SetToRequest", "Keep"};
static const char *const qos_names[] = {"BestEffort", "Burstable", "Guaranteed"};

const char *tl_confidence_name(enum tl_confidence confidence)
{
    return confidence_names[confidence];
}

const char *tl_limit_mode_name(enum tl_limit_mode mode)
{
    return limit_mode_names[mode];
}

const char *tl_qos_name(enum tl_qos qos)
{
    return qos_names[qos];
}

bool tl_limit_mode_parse(const char *text, enum tl_limit_mode *out)
{
    for (size_t i = 0; i < sizeof(limit_mode_names) / sizeof(limit_mode_names[0]); i++) {
        if (strcmp(text, limit_mode_names[i]) == 0) {
            *out = (enum tl_limit_mode)i;
            return true;
        }
    }
    return false;
}

bool tl_confidence_parse(const char *text, enum tl_confidence *out)
{
    for (size_t i = 0; i < sizeof(confidence_names) / sizeof(confidence_names[0]); i++) {
        if (strcmp(text, confidence_names[i]) == 0) {
            *out = (enum tl_confidence)i;
            return true;
        }
    }
    return false;
}

double tl_round_cpu(double cores)
{
    double milli = cores * 1000;
    double step = milli < 100 ? 1 : milli < 1000 ? 5 : 10;
    /* Shave float noise first, so 0.25 cores stays 250m instead of becoming 251m. */
    return ceil(milli / step - 1e-9) * step / 1000;
}

double tl_round_memory(double bytes)
{
    double step = bytes < GIB ? MIB : 16 * MIB;
    return ceil(bytes / step - 1e-9) * step;
}

/*
 * Confidence grows with history length and coverage (the share of expected samples present):
 * under an hour, or no samples, there is nothing to go on (None); a day covers one daily cycle
 * (Low below it); a week covers the weekly one (Medium below it, or with gaps); past that, High.
 */
enum tl_confidence tl_recommend_confidence(double history_seconds, double coverage)
{
    if (history_seconds < HOUR || coverage <= 0)
        return TL_CONFIDENCE_NONE;
    if (history_seconds < DAY || coverage < 0.5)
        return TL_CONFIDENCE_LOW;
    if (history_seconds < 7 * DAY - HOUR || coverage < 0.8)
        return TL_CONFIDENCE_MEDIUM;
    return TL_CONFIDENCE_HIGH;
}

/* How far below the current request advice may go, by confidence: thin data, small steps down. */
static double max_decrease(enum tl_confidence confidence)
{
    switch (confidence) {
    case TL_CONFIDENCE_NONE:
        return 0;
    case TL_CONFIDENCE_LOW:
        return 0.3;
    case TL_CONFIDENCE_MEDIUM:
        return 0.6;
    case TL_CONFIDENCE_HIGH:
        break;
    }
    return 1;
}

/*
 * A percentile of the usage, never above the largest sample. The histogram answers with the end
 * of a bucket, up to 5% above every sample in it, and no percentile exceeds the maximum: both are
 * upper bounds, the smaller is the tighter. Without the cap, steady usage that sits in one bucket
 * was sized up to 5% above anything it ever used (bench/quality: 1% less CPU waste, no day lost),
 * a status could show a p95 above the max, and percentile 100 was not the observed maximum that
 * the API promises. `percentile` is in percent.
 */
static double usage_percentile(const struct tl_histogram *hist, double percentile)
{
    return fmin(tl_histogram_percentile(hist, percentile / 100), hist->max_value);
}

static double clamp_rule(double value, const struct tl_resource_rule *rule)
{
    if (rule->min > 0 && value < rule->min)
        value = rule->min;
    if (rule->max > 0 && value > rule->max)
        value = rule->max;
    return value;
}

static void summarize(const struct tl_recommend_policy *policy, const struct tl_usage *usage,
                      struct tl_usage_summary *sum)
{
    memset(sum, 0, sizeof(*sum));
    const struct tl_histogram *cpu = usage->cpu;
    const struct tl_histogram *mem = usage->memory;
    if (cpu && !tl_histogram_is_empty(cpu)) {
        sum->cpu_p50 = usage_percentile(cpu, 50);
        sum->cpu_p95 = usage_percentile(cpu, 95);
        sum->cpu_max = cpu->max_value;
        sum->cpu_mean = tl_histogram_mean(cpu);
        sum->cpu_stddev = tl_histogram_stddev(cpu);
        sum->samples = cpu->samples;
        sum->history_seconds = cpu->last_time - cpu->first_time;
    }
    if (mem && !tl_histogram_is_empty(mem)) {
        sum->memory_p50 = usage_percentile(mem, 50);
        sum->memory_p99 = usage_percentile(mem, 99);
        sum->memory_max = mem->max_value;
        if (mem->samples < sum->samples || sum->samples == 0) {
            sum->samples = mem->samples; /* the scarcer resource decides */
            sum->history_seconds = mem->last_time - mem->first_time;
        }
    }
    double interval = policy->sample_interval > 0 ? policy->sample_interval : 60;
    if (sum->samples > 0) {
        double expected = floor(sum->history_seconds / interval) + 1;
        sum->coverage = fmin(1.0, (double)sum->samples / expected);
    }
}

static double limit_for(enum tl_limit_mode mode, double new_request, double cur_request,
                        double cur_limit)
{
    switch (mode) {
    case TL_LIMIT_REMOVE:
        return 0;
    case TL_LIMIT_KEEP_RATIO:
        if (cur_limit <= 0)
            return 0;
        /* No request means the API server defaulted it to the limit: a ratio of one. */
        return cur_request > 0 ? new_request * (cur_limit / cur_request) : new_request;
    case TL_LIMIT_SET_TO_REQUEST:
        return new_request;
    case TL_LIMIT_KEEP:
        return cur_limit;
    }
    return 0;
}

/* Caps a decrease below the current request by what the confidence allows. */
static double cap_decrease(double proposed, double current, enum tl_confidence confidence,
                           bool *capped)
{
    if (current <= 0 || proposed >= current)
        return proposed;
    double floor_value = current * (1 - max_decrease(confidence));
    if (proposed < floor_value) {
        *capped = true;
        return floor_value;
    }
    return proposed;
}

static void format_cpu(double cores, char *buf, size_t len)
{
    if (cores < 1)
        snprintf(buf, len, "%.0fm", cores * 1000);
    else
        snprintf(buf, len, "%.3g", cores);
}

static void format_memory(double bytes, char *buf, size_t len)
{
    if (bytes >= GIB)
        snprintf(buf, len, "%.3gGi", bytes / GIB);
    else
        snprintf(buf, len, "%.0fMi", ceil(bytes / MIB));
}

static void format_history(double seconds, char *buf, size_t len)
{
    if (seconds >= 2 * DAY)
        snprintf(buf, len, "%.0fd", seconds / DAY);
    else
        snprintf(buf, len, "%.0fh", seconds / HOUR);
}

static void explain(const struct tl_recommend_policy *policy, const struct tl_usage *usage,
                    struct tl_advice *out)
{
    char cpu[32], mem[32], hist[32], oom[96] = "", cap[64] = "", hpa[64] = "";
    format_cpu(usage_percentile(usage->cpu, policy->cpu.percentile), cpu, sizeof(cpu));
    format_memory(usage_percentile(usage->memory, policy->memory.percentile), mem, sizeof(mem));
    format_history(out->usage.history_seconds, hist, sizeof(hist));
    if (out->oom_bumped) {
        char bumped[32];
        format_memory(out->recommended.memory_request, bumped, sizeof(bumped));
        snprintf(oom, sizeof(oom), "; %u OOM kill%s raised memory to %s", usage->oom_kills,
                 usage->oom_kills == 1 ? "" : "s", bumped);
    }
    else if (usage->oom_kills > 0) {
        /* The percentile already clears the OOM floor; still say the kills were seen. */
        snprintf(oom, sizeof(oom), "; memory stays above the usage of its %u OOM kill%s",
                 usage->oom_kills, usage->oom_kills == 1 ? "" : "s");
    }
    if (out->hpa_consistent)
        snprintf(hpa, sizeof(hpa), "; CPU request sized for the HPA's %.0f%% target",
                 usage->hpa_cpu_target_percent);
    if (out->capped_by_confidence)
        snprintf(cap, sizeof(cap), "; the cut is limited while confidence is %s",
                 tl_confidence_name(out->confidence));
    int n = snprintf(out->explanation, sizeof(out->explanation),
                     "p%.0f CPU %s and p%.0f memory %s over %s (%llu samples) plus %.0f%%/%.0f%% "
                     "headroom%s%s%s.",
                     policy->cpu.percentile, cpu, policy->memory.percentile, mem, hist,
                     (unsigned long long)out->usage.samples, policy->cpu.headroom_percent,
                     policy->memory.headroom_percent, oom, hpa, cap);
    if (n < 0 || (size_t)n >= sizeof(out->explanation))
        memcpy(out->explanation + sizeof(out->explanation) - 4, "...", 4);
}

void tl_recommend_container(const struct tl_recommend_policy *policy, const struct tl_usage *usage,
                            const struct tl_resources *current, struct tl_advice *out)
{
    memset(out, 0, sizeof(*out));
    summarize(policy, usage, &out->usage);
    const struct tl_usage_summary *sum = &out->usage;
    out->confidence = tl_recommend_confidence(sum->history_seconds, sum->coverage);
    if (out->confidence == TL_CONFIDENCE_NONE || !usage->cpu || !usage->memory ||
        tl_histogram_is_empty(usage->cpu) || tl_histogram_is_empty(usage->memory)) {
        out->confidence = TL_CONFIDENCE_NONE;
        out->recommended = *current;
        out->lower = *current;
        out->upper = *current;
        snprintf(out->explanation, sizeof(out->explanation),
                 "Not enough usage history yet (%llu samples over %.1f hours; at least one hour "
                 "is needed), so the current values are kept.",
                 (unsigned long long)sum->samples, sum->history_seconds / HOUR);
        return;
    }
    double cpu_headroom = 1 + policy->cpu.headroom_percent / 100;
    double mem_headroom = 1 + policy->memory.headroom_percent / 100;

    /* CPU: the policy's percentile plus headroom, or the HPA's fixed point (docs/recommender.md).
     */
    double cpu = usage_percentile(usage->cpu, policy->cpu.percentile) * cpu_headroom;
    if (usage->hpa_cpu_target_percent > 0) {
        cpu = sum->cpu_mean / (usage->hpa_cpu_target_percent / 100);
        out->hpa_consistent = true;
    }
    if (usage->throttled_ratio > THROTTLE_SIGNIFICANT)
        cpu = fmax(cpu, sum->cpu_max * cpu_headroom); /* throttled usage hides real demand */
    cpu = clamp_rule(cpu, &policy->cpu);

    /* Memory: the percentile plus headroom; after OOM kills, above the usage that was killed. */
    double mem = usage_percentile(usage->memory, policy->memory.percentile);
    mem *= mem_headroom;
    if (usage->oom_kills > 0) {
        double killed_at = fmax(usage->oom_memory, sum->memory_max);
        double bumped = killed_at * (1 + policy->oom_bump_percent / 100);
        if (bumped > mem) {
            mem = bumped;
            out->oom_bumped = true;
        }
    }
    mem = clamp_rule(mem, &policy->memory);

    cpu = cap_decrease(cpu, current->cpu_request, out->confidence, &out->capped_by_confidence);
    mem = cap_decrease(mem, current->memory_request, out->confidence, &out->capped_by_confidence);
    cpu = tl_round_cpu(cpu);
    mem = tl_round_memory(mem);

    struct tl_resources *rec = &out->recommended;
    rec->cpu_request = cpu;
    rec->memory_request = mem;
    rec->cpu_limit = limit_for(policy->cpu_limit, cpu, current->cpu_request, current->cpu_limit);
    rec->memory_limit =
        limit_for(policy->memory_limit, mem, current->memory_request, current->memory_limit);
    /* A memory limit below the largest working set seen is an OOM kill waiting to happen. */
    double safe_limit = tl_round_memory(fmax(sum->memory_max * MEMORY_LIMIT_MARGIN, mem));
    if (policy->guaranteed) {
        rec->memory_request = fmax(rec->memory_request, safe_limit);
        rec->cpu_limit = rec->cpu_request;
        rec->memory_limit = rec->memory_request;
    }
    else if (rec->memory_limit > 0 && rec->memory_limit < safe_limit) {
        rec->memory_limit = safe_limit;
    }
    if (rec->cpu_limit > 0 && rec->cpu_limit < rec->cpu_request)
        rec->cpu_limit = rec->cpu_request;
    if (rec->cpu_limit > 0)
        rec->cpu_limit = tl_round_cpu(rec->cpu_limit);
    if (rec->memory_limit > 0)
        rec->memory_limit = tl_round_memory(rec->memory_limit);

    out->lower.cpu_request = tl_round_cpu(clamp_rule(sum->cpu_p50 * cpu_headroom, &policy->cpu));
    out->lower.memory_request =
        tl_round_memory(clamp_rule(sum->memory_p50 * mem_headroom, &policy->memory));
    out->upper.cpu_request = tl_round_cpu(fmax(sum->cpu_max * cpu_headroom, cpu));
    out->upper.memory_request = tl_round_memory(fmax(sum->memory_max * mem_headroom, mem));
    explain(policy, usage, out);
}

enum tl_qos tl_qos_of(const struct tl_resources *containers, size_t count)
{
    bool any = false;
    bool guaranteed = count > 0;
    for (size_t i = 0; i < count; i++) {
        const struct tl_resources *c = &containers[i];
        if (c->cpu_request > 0 || c->cpu_limit > 0 || c->memory_request > 0 || c->memory_limit > 0)
            any = true;
        /* Guaranteed: every container has both limits, and requests equal to them (an unset
         * request defaults to the limit). */
        bool cpu_ok = c->cpu_limit > 0 && (c->cpu_request == 0 || c->cpu_request == c->cpu_limit);
        bool mem_ok =
            c->memory_limit > 0 && (c->memory_request == 0 || c->memory_request == c->memory_limit);
        if (!cpu_ok || !mem_ok)
            guaranteed = false;
    }
    if (!any)
        return TL_QOS_BEST_EFFORT;
    return guaranteed ? TL_QOS_GUARANTEED : TL_QOS_BURSTABLE;
}
