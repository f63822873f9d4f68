/* error: the one error enum every lib/ and controller/ function returns, and its strings. */
#ifndef TL_ERROR_H
#define TL_ERROR_H

enum tl_err {
    TL_OK = 0,
    TL_ENOMEM,    /* an allocation failed */
    TL_EINVAL,    /* malformed input: the caller's message says which field */
    TL_ENOTFOUND, /* the object, key or path does not exist */
    TL_ECONFLICT, /* a write lost a race (HTTP 409) or a patch test failed */
    TL_EGONE,     /* a resourceVersion is too old (HTTP 410) */
    TL_ETOOBIG,   /* input exceeds a fixed cap */
    TL_ERANGE,    /* a number does not fit the type that must hold it */
    TL_EIO,       /* reading or writing a file or socket failed */
    TL_ETIMEDOUT, /* an operation ran out of time */
    TL_EHTTP,     /* the server answered with an unexpected HTTP status */
    TL_EAUTH,     /* credentials missing, rejected or expired (401/403) */
    TL_ESTATE,    /* the call is not valid in the object's current state */
};

/* Returns a static, human-readable string for err; never NULL. */
const char *tl_strerror(enum tl_err err);

#endif
