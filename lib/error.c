#include "error.h"

const char *tl_strerror(enum tl_err err)
{
    switch (err) {
    case TL_OK:
        return "success";
    case TL_ENOMEM:
        return "out of memory";
    case TL_EINVAL:
        return "invalid input";
    case TL_ENOTFOUND:
        return "not found";
    case TL_ECONFLICT:
        return "conflict";
    case TL_EGONE:
        return "resource version too old";
    case TL_ETOOBIG:
        return "input too large";
    case TL_ERANGE:
        return "value out of range";
    case TL_EIO:
        return "input/output error";
    case TL_ETIMEDOUT:
        return "timed out";
    case TL_EHTTP:
        return "unexpected HTTP status";
    case TL_EAUTH:
        return "not authorized";
    case TL_ESTATE:
        return "invalid state";
    }
    return "unknown error";
}
