#include "histogram.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The VPA recommender's layouts
 * (vertical-pod-autoscaler/pkg/recommender/model/aggregations_config.go) with its default 24 h
 * half-life. */
const struct tl_histogram_options tl_histogram_cpu_defaults = {
    .first_bucket = 0.001, .ratio = 1.05, .nbuckets = 238, .half_life = 86400};
const struct tl_histogram_options tl_histogram_memory_defaults = {
    .first_bucket = 1e7, .ratio = 1.05, .nbuckets = 176, .half_life = 86400};

/* Past this exponent the weights are rescaled, long before a double would overflow. */
#define MAX_DECAY_EXPONENT 100.0
#define CHECKPOINT_SCALE   10000.0

void tl_histogram_init(struct tl_histogram *hist, const struct tl_histogram_options *opts)
{
    memset(hist, 0, sizeof(*hist));
    hist->opts = opts;
}

void tl_histogram_free(struct tl_histogram *hist)
{
    if (hist == NULL)
        return;
    free(hist->weights);
    const struct tl_histogram_options *opts = hist->opts;
    tl_histogram_init(hist, opts);
}

double tl_histogram_bucket_start(const struct tl_histogram_options *opts, size_t bucket)
{
    return opts->first_bucket * (pow(opts->ratio, (double)bucket) - 1) / (opts->ratio - 1);
}

size_t tl_histogram_bucket_of(const struct tl_histogram_options *opts, double value)
{
    if (!(value > 0)) /* also catches NaN */
        return 0;
    double index =
        floor(log(value * (opts->ratio - 1) / opts->first_bucket + 1) / log(opts->ratio));
    if (index >= (double)(opts->nbuckets - 1))
        return opts->nbuckets - 1;
    size_t bucket = (size_t)index;
    /* log() rounding can put a value that sits exactly on a boundary one bucket low. */
    if (bucket + 1 < opts->nbuckets && value >= tl_histogram_bucket_start(opts, bucket + 1))
        bucket++;
    return bucket;
}

/* Makes [bucket] part of the stored range, keeping existing weights in place. */
static enum tl_err cover(struct tl_histogram *hist, uint32_t bucket)
{
    if (hist->len > 0 && bucket >= hist->lo && bucket < hist->lo + hist->len)
        return TL_OK;
    uint32_t lo = hist->len == 0 ? bucket : (bucket < hist->lo ? bucket : hist->lo);
    uint32_t hi = hist->len == 0
                      ? bucket + 1
                      : (bucket + 1 > hist->lo + hist->len ? bucket + 1 : hist->lo + hist->len);
    double *weights = calloc(hi - lo, sizeof(*weights));
    if (!weights)
        return TL_ENOMEM;
    if (hist->len > 0)
        memcpy(weights + (hist->lo - lo), hist->weights, hist->len * sizeof(*weights));
    free(hist->weights);
    hist->weights = weights;
    hist->lo = lo;
    hist->len = hi - lo;
    return TL_OK;
}

static void scale_all(struct tl_histogram *hist, double factor)
{
    for (uint32_t i = 0; i < hist->len; i++)
        hist->weights[i] *= factor;
    hist->total *= factor;
}

/*
 * Decay without touching old buckets: instead of shrinking every old weight as time passes, new
 * samples get weight 2^((t - ref) / half_life), which keeps ratios identical (the VPA's
 * DecayingHistogram). When that factor grows large, everything is rescaled to a new ref.
 */
static double decay_factor(struct tl_histogram *hist, double t)
{
    if (hist->opts->half_life <= 0)
        return 1;
    if (hist->samples == 0 && hist->total == 0)
        hist->ref_time = t;
    double exponent = (t - hist->ref_time) / hist->opts->half_life;
    if (exponent > MAX_DECAY_EXPONENT) {
        scale_all(hist, exp2(-exponent));
        hist->ref_time = t;
        exponent = 0;
    }
    return exp2(exponent);
}

enum tl_err tl_histogram_add(struct tl_histogram *hist, double value, double weight, double t)
{
    if (!(weight > 0) || !isfinite(value) || !isfinite(t))
        return TL_EINVAL;
    uint32_t bucket = (uint32_t)tl_histogram_bucket_of(hist->opts, value);
    enum tl_err result = cover(hist, bucket);
    if (result != TL_OK)
        return result;
    double scaled = weight * decay_factor(hist, t);
    hist->weights[bucket - hist->lo] += scaled;
    hist->total += scaled;
    if (hist->samples == 0 || t < hist->first_time)
        hist->first_time = t;
    if (hist->samples == 0 || t > hist->last_time)
        hist->last_time = t;
    if (hist->samples == 0 || value > hist->max_value)
        hist->max_value = value;
    hist->samples++;
    return TL_OK;
}

int tl_histogram_is_empty(const struct tl_histogram *hist)
{
    return hist->total <= 0;
}

double tl_histogram_percentile(const struct tl_histogram *hist, double p)
{
    if (tl_histogram_is_empty(hist))
        return 0;
    double threshold = p * hist->total;
    double sum = 0;
    for (uint32_t i = 0; i < hist->len; i++) {
        sum += hist->weights[i];
        if (sum >= threshold && hist->weights[i] > 0)
            return tl_histogram_bucket_start(hist->opts, hist->lo + i + 1);
    }
    /* Rounding left the threshold a hair above the sum: the top occupied bucket. */
    for (uint32_t i = hist->len; i-- > 0;) {
        if (hist->weights[i] > 0)
            return tl_histogram_bucket_start(hist->opts, hist->lo + i + 1);
    }
    return 0;
}

static double bucket_mid(const struct tl_histogram *hist, uint32_t i)
{
    size_t bucket = hist->lo + i;
    double start = tl_histogram_bucket_start(hist->opts, bucket);
    if (bucket + 1 >= hist->opts->nbuckets)
        return start;
    return (start + tl_histogram_bucket_start(hist->opts, bucket + 1)) / 2;
}

double tl_histogram_mean(const struct tl_histogram *hist)
{
    if (tl_histogram_is_empty(hist))
        return 0;
    double sum = 0;
    for (uint32_t i = 0; i < hist->len; i++)
        sum += hist->weights[i] * bucket_mid(hist, i);
    return sum / hist->total;
}

double tl_histogram_stddev(const struct tl_histogram *hist)
{
    if (tl_histogram_is_empty(hist))
        return 0;
    double mean = tl_histogram_mean(hist);
    double sum = 0;
    for (uint32_t i = 0; i < hist->len; i++) {
        double d = bucket_mid(hist, i) - mean;
        sum += hist->weights[i] * d * d;
    }
    return sqrt(sum / hist->total);
}

enum tl_err tl_histogram_merge(struct tl_histogram *dst, const struct tl_histogram *src)
{
    if (src->len == 0)
        return TL_OK;
    if (dst->opts != src->opts)
        return TL_EINVAL;
    enum tl_err result = cover(dst, src->lo);
    if (result == TL_OK)
        result = cover(dst, src->lo + src->len - 1);
    if (result != TL_OK)
        return result;
    /* Bring both to the later reference time so their weights are comparable. */
    double factor = 1;
    if (dst->opts->half_life > 0 && dst->total > 0) {
        double shift = (src->ref_time - dst->ref_time) / dst->opts->half_life;
        if (shift > 0) {
            scale_all(dst, exp2(-shift));
            dst->ref_time = src->ref_time;
        }
        else {
            factor = exp2(shift);
        }
    }
    else {
        dst->ref_time = src->ref_time;
    }
    for (uint32_t i = 0; i < src->len; i++)
        dst->weights[src->lo - dst->lo + i] += src->weights[i] * factor;
    dst->total += src->total * factor;
    if (dst->samples == 0 || src->first_time < dst->first_time)
        dst->first_time = src->first_time;
    if (dst->samples == 0 || src->last_time > dst->last_time)
        dst->last_time = src->last_time;
    if (dst->samples == 0 || src->max_value > dst->max_value)
        dst->max_value = src->max_value;
    dst->samples += src->samples;
    return TL_OK;
}

char *tl_histogram_save(const struct tl_histogram *hist)
{
    double top = 0;
    for (uint32_t i = 0; i < hist->len; i++)
        top = fmax(top, hist->weights[i]);
    /* "h1" + six numbers + lo, then at most 6 characters per bucket. */
    size_t cap = 160 + (size_t)hist->len * 7;
    char *text = malloc(cap);
    if (!text)
        return NULL;
    int n = snprintf(text, cap, "h1 %.17g %llu %.17g %.17g %.17g %u", hist->ref_time,
                     (unsigned long long)hist->samples, hist->first_time, hist->last_time,
                     hist->max_value, (unsigned)hist->lo);
    size_t used = n > 0 ? (size_t)n : cap;
    for (uint32_t i = 0; i < hist->len && used < cap; i++) {
        long w = top > 0 ? lround(hist->weights[i] / top * CHECKPOINT_SCALE) : 0;
        /* A bucket that held weight must not round away: it could be the one the max sits in. */
        if (w == 0 && hist->weights[i] > 0)
            w = 1;
        n = snprintf(text + used, cap - used, " %ld", w);
        used = n > 0 ? used + (size_t)n : cap;
    }
    if (used >= cap) {
        free(text);
        return NULL;
    }
    return text;
}

static int next_number(const char **p, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(*p, &end);
    if (end == *p || errno != 0 || !isfinite(v))
        return 0;
    *p = end;
    *out = v;
    return 1;
}

enum tl_err tl_histogram_load(struct tl_histogram *hist, const char *text)
{
    if (strncmp(text, "h1 ", 3) != 0)
        return TL_EINVAL;
    const char *p = text + 3;
    double head[6];
    for (size_t i = 0; i < 6; i++) {
        if (!next_number(&p, &head[i]))
            return TL_EINVAL;
    }
    double lo = head[5];
    if (lo < 0 || lo >= (double)hist->opts->nbuckets || head[1] < 0 || lo != floor(lo))
        return TL_EINVAL;
    struct tl_histogram loaded;
    tl_histogram_init(&loaded, hist->opts);
    loaded.ref_time = head[0];
    loaded.samples = (uint64_t)head[1];
    loaded.first_time = head[2];
    loaded.last_time = head[3];
    loaded.max_value = head[4];
    uint32_t bucket = (uint32_t)lo;
    double w;
    while (next_number(&p, &w)) {
        if (w < 0 || w > CHECKPOINT_SCALE || bucket >= hist->opts->nbuckets) {
            tl_histogram_free(&loaded);
            return TL_EINVAL;
        }
        if (w > 0) {
            if (cover(&loaded, bucket) != TL_OK) {
                tl_histogram_free(&loaded);
                return TL_ENOMEM;
            }
            loaded.weights[bucket - loaded.lo] = w;
            loaded.total += w;
        }
        bucket++;
    }
    while (*p == ' ')
        p++;
    if (*p != '\0') {
        tl_histogram_free(&loaded);
        return TL_EINVAL;
    }
    tl_histogram_free(hist);
    *hist = loaded;
    return TL_OK;
}
