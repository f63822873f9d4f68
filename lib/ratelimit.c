#include "ratelimit.h"

#include <math.h>

void tl_token_bucket_init(struct tl_token_bucket *bucket, double qps, double burst, double now)
{
    bucket->rate = qps;
    bucket->burst = burst < 1 ? 1 : burst;
    bucket->tokens = bucket->burst;
    bucket->last = now;
}

double tl_token_bucket_take(struct tl_token_bucket *bucket, double now)
{
    if (bucket->rate <= 0)
        return 0;
    /* A clock that went backwards refills nothing rather than draining the bucket. */
    if (now > bucket->last) {
        bucket->tokens = fmin(bucket->burst, bucket->tokens + (now - bucket->last) * bucket->rate);
        bucket->last = now;
    }
    if (bucket->tokens >= 1) {
        bucket->tokens -= 1;
        return 0;
    }
    return (1 - bucket->tokens) / bucket->rate;
}

void tl_backoff_init(struct tl_backoff *backoff, double base, double max, uint64_t seed)
{
    backoff->base = base;
    backoff->max = max < base ? base : max;
    backoff->attempts = 0;
    backoff->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

/* xorshift64* (Vigna, "An experimental exploration of Marsaglia's xorshift generators", 2016). */
static double next_unit(struct tl_backoff *backoff)
{
    uint64_t x = backoff->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    backoff->rng = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0; /* [0, 1) */
}

double tl_backoff_next(struct tl_backoff *backoff)
{
    /* Doubling stops at the cap, so the exponent never overflows however long it fails. */
    double step = backoff->base;
    for (unsigned i = 0; i < backoff->attempts && step < backoff->max; i++)
        step *= 2;
    if (step > backoff->max)
        step = backoff->max;
    if (backoff->attempts < 64)
        backoff->attempts++;
    return step / 2 + next_unit(backoff) * step / 2;
}

void tl_backoff_reset(struct tl_backoff *backoff)
{
    backoff->attempts = 0;
}
