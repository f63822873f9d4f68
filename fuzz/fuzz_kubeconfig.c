/* libFuzzer target: any bytes as a kubeconfig must give a config or an error, never a crash. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kubeconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    struct tl_kube_config *cfg = NULL;
    /* A relative source exercises path resolution; an explicit context the lookup by name. */
    static const char *const contexts[] = {NULL, "a", "prod"};
    const char *context = contexts[size % 3];
    enum tl_err result = tl_kube_config_parse((const char *)data, size, "fuzz/config", context,
                                              &cfg, err, sizeof(err));
    if (result == TL_OK) {
        /* A success must be complete enough for the client to use. */
        if (!cfg || !cfg->server || !cfg->namespace || !cfg->source)
            __builtin_trap();
        tl_kube_config_destroy(cfg);
    }
    else if (cfg || memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0') {
        /* A failure leaves nothing behind and always says why. */
        __builtin_trap();
    }
    return 0;
}
