/* histogram: decaying usage histograms with exponential buckets, their percentiles and checkpoints.
 */
#ifndef TL_HISTOGRAM_H
#define TL_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/*
 * Bucket layout and decay, shared by every histogram of one kind (CPU or memory). Bucket i
 * starts at first * (ratio^i - 1) / (ratio - 1), so the relative error of a percentile is at
 * most ratio - 1 whatever the magnitude (the layout of the Kubernetes VPA recommender).
 */
struct tl_histogram_options {
    double first_bucket; /* width of bucket 0, in the value's unit (cores, bytes) */
    double ratio;        /* > 1: each bucket is this much wider than the one before */
    size_t nbuckets;     /* values past the last bucket's start land in the last bucket */
    double half_life;    /* seconds for a sample's weight to halve; <= 0: no decay */
};

/* CPU in cores: 1m to over 1000 cores in 5% steps. Memory in bytes: 10 MB to over 1 TB. */
extern const struct tl_histogram_options tl_histogram_cpu_defaults;
extern const struct tl_histogram_options tl_histogram_memory_defaults;

/*
 * Only the occupied range of buckets is stored (usage rarely spans more than a few dozen), so a
 * histogram costs tens of bytes to a few hundred, not the full layout.
 */
struct tl_histogram {
    const struct tl_histogram_options *opts; /* borrowed; must outlive the histogram */
    double *weights;                         /* weights[i] is bucket lo + i */
    uint32_t lo;
    uint32_t len;
    double total;
    double ref_time;   /* weights are scaled relative to 2^((t - ref_time) / half_life) */
    uint64_t samples;  /* raw number of samples added */
    double first_time; /* earliest and latest sample times, for history length and coverage */
    double last_time;
    double max_value; /* exact largest sample, for memory peaks */
};

void tl_histogram_init(struct tl_histogram *hist, const struct tl_histogram_options *opts);
void tl_histogram_free(struct tl_histogram *hist);

/* Adds a sample of `value` at time t (seconds) with a weight; TL_ENOMEM leaves it unchanged. */
enum tl_err tl_histogram_add(struct tl_histogram *hist, double value, double weight, double t);

/*
 * The smallest bucket end such that at least fraction p (0..1] of the decayed weight lies at or
 * below it: an upper bound on the true percentile within one bucket. 0 when empty.
 */
double tl_histogram_percentile(const struct tl_histogram *hist, double p);

/*
 * Weighted mean and standard deviation, taking each bucket at its midpoint (the last bucket at
 * its start); used to tell spiky from steady usage. 0 when empty.
 */
double tl_histogram_mean(const struct tl_histogram *hist);
double tl_histogram_stddev(const struct tl_histogram *hist);

/* Adds all of src's weight into dst (same options), e.g. pods of one workload into one. */
enum tl_err tl_histogram_merge(struct tl_histogram *dst, const struct tl_histogram *src);

int tl_histogram_is_empty(const struct tl_histogram *hist);

size_t tl_histogram_bucket_of(const struct tl_histogram_options *opts, double value);
double tl_histogram_bucket_start(const struct tl_histogram_options *opts, size_t bucket);

/*
 * Checkpoint: a compact, versioned text form ("h1 <ref> <samples> <first> <last> <max> <lo>
 * <w0> <w1> ...", weights scaled to integers up to 10000 relative to the largest bucket, as the
 * VPA does) that fits in a status field or a ConfigMap. Caller frees the string.
 */
char *tl_histogram_save(const struct tl_histogram *hist);
/* Replaces hist's content from a checkpoint; TL_EINVAL (and hist untouched) if malformed. */
enum tl_err tl_histogram_load(struct tl_histogram *hist, const char *text);

#endif
