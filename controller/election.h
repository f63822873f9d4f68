/* election: runs Lease leader election for the operator; only the leader reconciles and writes. */
#ifndef TL_ELECTION_H
#define TL_ELECTION_H

#include <stdbool.h>

#include "error.h"

struct tl_operator;
struct tl_election;

/* Called when leadership starts (leading true) or ends (false); arg is the operator. */
typedef void (*tl_election_fn)(struct tl_operator *op, bool leading);

/*
 * Starts electing on op's loop with op->opts' lease name, namespace, identity and durations.
 * Caller frees with tl_election_destroy.
 */
enum tl_err tl_election_start(struct tl_operator *op, tl_election_fn on_change,
                              struct tl_election **out);

/*
 * Gives the lease up if held (so a successor takes over at once, not after it expires), waiting
 * on the loop for at most `timeout` seconds, then frees. NULL is a no-op.
 */
void tl_election_destroy(struct tl_election *e, double timeout);

bool tl_election_leading(const struct tl_election *e);

#endif
