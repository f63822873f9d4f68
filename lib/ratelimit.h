/* ratelimit: a token bucket (client-side QPS/burst limits) and exponential backoff with jitter. */
#ifndef TL_RATELIMIT_H
#define TL_RATELIMIT_H

#include <stdint.h>

/* Time is passed in by the caller (seconds, any monotonic origin) so the logic is testable. */
struct tl_token_bucket {
    double rate;   /* tokens per second; <= 0 means unlimited */
    double burst;  /* bucket size, at least 1 */
    double tokens; /* tokens available at `last` */
    double last;
};

void tl_token_bucket_init(struct tl_token_bucket *bucket, double qps, double burst, double now);

/*
 * Takes one token if one is available and returns 0. Otherwise takes nothing and returns the
 * seconds to wait until one will be, so a caller can arm a timer instead of spinning.
 */
double tl_token_bucket_take(struct tl_token_bucket *bucket, double now);

/*
 * Exponential backoff with "equal jitter": each delay is half the exponential step plus a random
 * part of the other half, so retries spread out but never collapse to zero
 * (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015).
 */
struct tl_backoff {
    double base; /* first step, seconds */
    double max;  /* cap on the step, seconds */
    unsigned attempts;
    uint64_t rng; /* xorshift64* state; never 0 */
};

void tl_backoff_init(struct tl_backoff *backoff, double base, double max, uint64_t seed);

/* Returns the next delay in seconds and counts one more attempt. */
double tl_backoff_next(struct tl_backoff *backoff);

/* Back to the first step after a success. */
void tl_backoff_reset(struct tl_backoff *backoff);

#endif
