/* Feeds arbitrary bytes to the watch decoder, split at a point the input chooses. */
#include <stddef.h>
#include <stdint.h>

#include "watch_decoder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum tl_err touch(void *arg, const char *type, cJSON *object)
{
    size_t *n = arg;
    *n += type[0] != '\0';
    return cJSON_GetObjectItemCaseSensitive(object, "stop") ? TL_ECONFLICT : TL_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t events = 0;
    /* A small cap so the too-big path is reached too. */
    struct tl_watch_decoder *dec = tl_watch_decoder_create(1 + data[0] * 16u, touch, &events);
    if (!dec)
        return 0;
    size_t split = data[1] % (size - 1);
    const char *text = (const char *)data + 2;
    size_t len = size - 2;
    if (split > len)
        split = len;
    tl_watch_decoder_feed(dec, text, split);
    tl_watch_decoder_feed(dec, text + split, len - split);
    tl_watch_decoder_reset(dec);
    tl_watch_decoder_feed(dec, text, len);
    tl_watch_decoder_destroy(dec);
    return 0;
}
