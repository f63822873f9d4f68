#include "scan.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "catalog.h"
#include "duration.h"
#include "http.h"
#include "json.h"
#include "kube_creds.h"
#include "log.h"
#include "objects.h"
#include "policy.h"
#include "prom.h"
#include "rec_status.h"
#include "usage.h"
#include "usage_collect.h"

#define GIB            1073741824.0
#define PAGE_SIZE      500
#define MAX_CONTAINERS 64 /* what a Recommendation's status holds (rec_status.c) */
#define PARALLEL_NS    4  /* namespaces collected at the same time: 3 queries each */
#define PROGRESS_WIDTH 24

/* ---- Flags ---- */

static bool flag_is(const struct tl_cli_flag *f, const char *arg, size_t len)
{
    return strlen(f->name) == len && strncmp(f->name, arg, len) == 0;
}

enum tl_err tl_cli_flag_next(const struct tl_cli_flag *flags, size_t count, int argc, char **argv,
                             int *i, size_t *which, const char **value, char *errbuf, size_t errlen)
{
    const char *arg = argv[*i];
    if (arg[0] != '-' || arg[1] == '\0') {
        *value = arg;
        (*i)++;
        return TL_ENOTFOUND;
    }
    const struct tl_cli_flag *f = NULL;
    const char *inline_value = NULL;
    if (arg[1] == '-') {
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        for (size_t k = 0; k < count && !f; k++) {
            if (flag_is(&flags[k], name, len))
                f = &flags[k];
        }
        if (!f) {
            snprintf(errbuf, errlen, "unknown flag \"--%.*s\"", (int)len, name);
            return TL_EINVAL;
        }
        inline_value = eq ? eq + 1 : NULL;
    }
    else {
        for (size_t k = 0; k < count && !f; k++) {
            if (flags[k].short_name != '\0' && flags[k].short_name == arg[1])
                f = &flags[k];
        }
        if (!f) {
            snprintf(errbuf, errlen, "unknown flag \"-%c\"", arg[1]);
            return TL_EINVAL;
        }
        if (arg[2] != '\0') {
            if (!f->takes_value) {
                snprintf(errbuf, errlen, "unknown flag \"%s\"", arg);
                return TL_EINVAL;
            }
            inline_value = arg[2] == '=' ? arg + 3 : arg + 2;
        }
    }
    (*i)++;
    if (!f->takes_value) {
        if (inline_value) {
            snprintf(errbuf, errlen, "--%s takes no value", f->name);
            return TL_EINVAL;
        }
        *which = (size_t)(f - flags);
        *value = NULL;
        return TL_OK;
    }
    if (!inline_value) {
        if (*i >= argc) {
            snprintf(errbuf, errlen, "--%s needs a value", f->name);
            return TL_EINVAL;
        }
        inline_value = argv[(*i)++];
    }
    *which = (size_t)(f - flags);
    *value = inline_value;
    return TL_OK;
}

void tl_cli_flags_usage(const struct tl_cli_flag *flags, size_t count, FILE *out)
{
    for (size_t k = 0; k < count; k++) {
        char left[64];
        char shorthand[8] = "    ";
        if (flags[k].short_name)
            snprintf(shorthand, sizeof(shorthand), "-%c, ", flags[k].short_name);
        snprintf(left, sizeof(left), "%s--%s%s%s", shorthand, flags[k].name,
                 flags[k].value_name ? " " : "", flags[k].value_name ? flags[k].value_name : "");
        fprintf(out, "  %-34s %s\n", left, flags[k].help);
    }
}

enum {
    F_KUBECONFIG,
    F_CONTEXT,
    F_PROMETHEUS,
    F_PROMETHEUS_HEADER,
    F_PROMETHEUS_TOKEN,
    F_METRICS_SERVER,
    F_NAMESPACE,
    F_ALL,
    F_SELECTOR,
    F_KINDS,
    F_HISTORY,
    F_CPU_PERCENTILE,
    F_MEMORY_PERCENTILE,
    F_CPU_HEADROOM,
    F_MEMORY_HEADROOM,
    F_REGION,
    F_OUTPUT,
    F_NO_PROGRESS,
    F_HELP,
};

static const struct tl_cli_flag scan_flags[] = {
    [F_KUBECONFIG] = {"kubeconfig", 0, true, "FILE",
                      "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)"},
    [F_CONTEXT] = {"context", 0, true, "NAME", "kubeconfig context (default: current-context)"},
    [F_PROMETHEUS] = {"prometheus-url", 0, true, "URL",
                      "Prometheus with cAdvisor and kube-state-metrics series (required)"},
    [F_PROMETHEUS_HEADER] = {"prometheus-header", 0, true, "HEADER",
                             "\"Name: value\" sent to Prometheus (X-Scope-OrgID); repeatable"},
    [F_PROMETHEUS_TOKEN] = {"prometheus-token-file", 0, true, "FILE",
                            "bearer token for Prometheus, read from FILE"},
    [F_METRICS_SERVER] = {"metrics-server", 0, false, NULL,
                          "not supported yet: metrics-server keeps no history"},
    [F_NAMESPACE] = {"namespace", 'n', true, "NS",
                     "namespaces to scan; repeat it or give a comma list"},
    [F_ALL] = {"all-namespaces", 'A', false, NULL, "scan every namespace (the default)"},
    [F_SELECTOR] = {"selector", 'l', true, "SEL",
                    "label selector on workloads: \"tier=web,env in (a,b),!canary\""},
    [F_KINDS] = {"kinds", 0, true, "LIST", "Deployment,StatefulSet,DaemonSet (default: all three)"},
    [F_HISTORY] = {"history", 0, true, "DURATION", "usage history to look at (default 14d)"},
    [F_CPU_PERCENTILE] = {"cpu-percentile", 0, true, "P",
                          "CPU percentile to size for (50-100, "
                          "default 95)"},
    [F_MEMORY_PERCENTILE] = {"memory-percentile", 0, true, "P",
                             "memory percentile to size for (50-100, default 99)"},
    [F_CPU_HEADROOM] = {"cpu-headroom", 0, true, "PCT",
                        "percent added above the CPU percentile (0-200, default 15)"},
    [F_MEMORY_HEADROOM] = {"memory-headroom", 0, true, "PCT",
                           "percent added above the memory percentile (0-200, default 20)"},
    [F_REGION] = {"region", 0, true, "REGION",
                  "AWS region whose prices value the savings "
                  "(default us-east-1)"},
    [F_OUTPUT] = {"output", 'o', true, "FORMAT", "table (default), json, yaml, csv or html"},
    [F_NO_PROGRESS] = {"no-progress", 0, false, NULL,
                       "no progress bar (it only shows when stderr is a terminal)"},
    [F_HELP] = {"help", 'h', false, NULL, "show this help"},
};

#define NFLAGS (sizeof(scan_flags) / sizeof(scan_flags[0]))

void tl_scan_usage(FILE *out)
{
    fputs("Usage: tailor scan --prometheus-url URL [flags]\n"
          "\n"
          "A one-shot rightsizing report for the workloads of the current kubeconfig context,\n"
          "from their usage history in Prometheus. Needs only read access (list Deployments,\n"
          "StatefulSets and DaemonSets; HorizontalPodAutoscalers when allowed); installs and\n"
          "writes nothing.\n"
          "\n"
          "Flags:\n",
          out);
    tl_cli_flags_usage(scan_flags, NFLAGS, out);
    fputs("\nExit status: 0 on success, 1 when the cluster or Prometheus cannot be read, 2 for bad "
          "flags.\nThe JSON and YAML schema is documented in docs/scan.md.\n",
          out);
}

static bool dns_label(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 63 || !isalnum((unsigned char)s[0]) ||
        !isalnum((unsigned char)s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return false;
    }
    return true;
}

enum tl_err tl_scan_add_namespaces(const char *text, char ***list, size_t *count, char *errbuf,
                                   size_t errlen)
{
    const char *p = text;
    while (true) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[64];
        if (len >= sizeof(name)) {
            snprintf(errbuf, errlen, "namespace \"%.*s...\" is longer than 63 characters", 20, p);
            return TL_EINVAL;
        }
        memcpy(name, p, len);
        name[len] = '\0';
        if (!dns_label(name)) {
            snprintf(errbuf, errlen, "\"%s\" is not a namespace name (a DNS label)", name);
            return TL_EINVAL;
        }
        bool seen = false;
        for (size_t i = 0; i < *count && !seen; i++)
            seen = strcmp((*list)[i], name) == 0;
        if (!seen) {
            char **grown = realloc(*list, (*count + 1) * sizeof(**list));
            if (!grown)
                return TL_ENOMEM;
            *list = grown;
            grown[*count] = strdup(name);
            if (!grown[*count])
                return TL_ENOMEM;
            (*count)++;
        }
        if (!comma)
            return TL_OK;
        p = comma + 1;
    }
}

static bool kinds_parse(const char *text, unsigned *out)
{
    static const struct {
        const char *name;
        enum tl_workload_kind kind;
    } names[] = {
        {"deployment", TL_KIND_DEPLOYMENT},
        {"deployments", TL_KIND_DEPLOYMENT},
        {"deploy", TL_KIND_DEPLOYMENT},
        {"statefulset", TL_KIND_STATEFULSET},
        {"statefulsets", TL_KIND_STATEFULSET},
        {"sts", TL_KIND_STATEFULSET},
        {"daemonset", TL_KIND_DAEMONSET},
        {"daemonsets", TL_KIND_DAEMONSET},
        {"ds", TL_KIND_DAEMONSET},
    };
    unsigned kinds = 0;
    const char *p = text;
    while (true) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        bool found = false;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && !found; i++) {
            if (strlen(names[i].name) == len && strncasecmp(names[i].name, p, len) == 0) {
                kinds |= (unsigned)names[i].kind;
                found = true;
            }
        }
        if (!found)
            return false;
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = kinds;
    return true;
}

static bool int_flag(const char *value, int min, int max, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (end == value || *end != '\0' || errno != 0 || v < min || v > max)
        return false;
    *out = (int)v;
    return true;
}

enum tl_err tl_scan_options_parse(int argc, char **argv, struct tl_scan_options *out, char *errbuf,
                                  size_t errlen)
{
    struct tl_scan_options o;
    memset(&o, 0, sizeof(o));
    o.kinds = TL_KIND_DEPLOYMENT | TL_KIND_STATEFULSET | TL_KIND_DAEMONSET;
    o.history = "14d";
    o.cpu_headroom = -1;
    o.memory_headroom = -1;
    o.region = "us-east-1";
    o.output = TL_SCAN_TABLE;
    bool all = false;
    enum tl_err result = TL_OK;
    for (int i = 0; i < argc && result == TL_OK;) {
        size_t which = 0;
        const char *value = NULL;
        result =
            tl_cli_flag_next(scan_flags, NFLAGS, argc, argv, &i, &which, &value, errbuf, errlen);
        if (result == TL_ENOTFOUND) {
            snprintf(errbuf, errlen, "unexpected argument \"%s\"", value);
            result = TL_EINVAL;
        }
        if (result != TL_OK)
            break;
        switch (which) {
        case F_KUBECONFIG:
            o.kubeconfig = value;
            break;
        case F_CONTEXT:
            o.context = value;
            break;
        case F_PROMETHEUS:
            o.prometheus_url = value;
            break;
        case F_PROMETHEUS_HEADER: {
            const char *colon = strchr(value, ':');
            if (!colon || colon == value || strchr(value, '\n') || strchr(value, '\r')) {
                snprintf(errbuf, errlen, "--prometheus-header: expected \"Name: value\"");
                result = TL_EINVAL;
                break;
            }
            const char **grown =
                realloc(o.prometheus_headers, (o.nprometheus_headers + 2) * sizeof(*grown));
            if (!grown) {
                result = TL_ENOMEM;
                break;
            }
            o.prometheus_headers = grown;
            grown[o.nprometheus_headers++] = value;
            grown[o.nprometheus_headers] = NULL;
            break;
        }
        case F_PROMETHEUS_TOKEN:
            o.prometheus_token_file = value;
            break;
        case F_METRICS_SERVER:
            snprintf(errbuf, errlen,
                     "--metrics-server is not supported yet: metrics-server keeps only the "
                     "latest sample, and sizing needs history; give --prometheus-url");
            result = TL_EINVAL;
            break;
        case F_NAMESPACE:
            result = tl_scan_add_namespaces(value, &o.namespaces, &o.nnamespaces, errbuf, errlen);
            if (result == TL_EINVAL) {
                char detail[200];
                snprintf(detail, sizeof(detail), "%s", errbuf);
                snprintf(errbuf, errlen, "--namespace: %s", detail);
            }
            break;
        case F_ALL:
            all = true;
            break;
        case F_SELECTOR:
            tl_selector_free(&o.selector);
            o.selector_text = value;
            result = tl_scan_selector_parse(value, &o.selector, errbuf, errlen);
            break;
        case F_KINDS:
            if (!kinds_parse(value, &o.kinds)) {
                snprintf(errbuf, errlen,
                         "--kinds: expected a comma list of Deployment, StatefulSet and "
                         "DaemonSet, got \"%s\"",
                         value);
                result = TL_EINVAL;
            }
            break;
        case F_HISTORY: {
            int64_t ms = 0;
            if (tl_duration_parse(value, &ms) != TL_OK || ms < 3600000) {
                snprintf(errbuf, errlen,
                         "--history: expected a duration of at least 1h such as \"14d\", got "
                         "\"%s\"",
                         value);
                result = TL_EINVAL;
            }
            o.history = value;
            break;
        }
        case F_CPU_PERCENTILE:
        case F_MEMORY_PERCENTILE: {
            int *field = which == F_CPU_PERCENTILE ? &o.cpu_percentile : &o.memory_percentile;
            if (!int_flag(value, 50, 100, field)) {
                snprintf(errbuf, errlen, "--%s: expected a whole number from 50 to 100, got \"%s\"",
                         scan_flags[which].name, value);
                result = TL_EINVAL;
            }
            break;
        }
        case F_CPU_HEADROOM:
        case F_MEMORY_HEADROOM: {
            int *field = which == F_CPU_HEADROOM ? &o.cpu_headroom : &o.memory_headroom;
            if (!int_flag(value, 0, 200, field)) {
                snprintf(errbuf, errlen, "--%s: expected a whole number from 0 to 200, got \"%s\"",
                         scan_flags[which].name, value);
                result = TL_EINVAL;
            }
            break;
        }
        case F_REGION:
            if (!tl_catalog_region_known(value)) {
                snprintf(errbuf, errlen, "--region: no prices for region \"%s\"", value);
                result = TL_EINVAL;
            }
            o.region = value;
            break;
        case F_OUTPUT:
            if (!tl_scan_format_parse(value, &o.output)) {
                snprintf(errbuf, errlen,
                         "--output: expected table, json, yaml, csv or html, got \"%s\"", value);
                result = TL_EINVAL;
            }
            break;
        case F_NO_PROGRESS:
            o.no_progress = true;
            break;
        case F_HELP:
            o.help = true;
            break;
        default:
            break;
        }
    }
    if (result == TL_OK && !o.help) {
        if (all && o.nnamespaces > 0) {
            snprintf(errbuf, errlen, "--namespace and --all-namespaces cannot be used together");
            result = TL_EINVAL;
        }
        else if (!o.prometheus_url) {
            snprintf(errbuf, errlen,
                     "--prometheus-url is required: the Prometheus that scrapes "
                     "the kubelets' cAdvisor (and kube-state-metrics)");
            result = TL_EINVAL;
        }
        else if (strncmp(o.prometheus_url, "http://", 7) != 0 &&
                 strncmp(o.prometheus_url, "https://", 8) != 0) {
            snprintf(errbuf, errlen, "--prometheus-url: expected an http:// or https:// URL");
            result = TL_EINVAL;
        }
    }
    if (result != TL_OK) {
        tl_scan_options_free(&o);
        return result;
    }
    *out = o;
    return TL_OK;
}

void tl_scan_options_free(struct tl_scan_options *opts)
{
    if (opts == NULL)
        return;
    for (size_t i = 0; i < opts->nnamespaces; i++)
        free(opts->namespaces[i]);
    free(opts->namespaces);
    tl_selector_free(&opts->selector);
    free(opts->prometheus_headers);
    memset(opts, 0, sizeof(*opts));
}

/* ---- Label selectors in kubectl's syntax ---- */

/*
 * The grammar of k8s.io/apimachinery/pkg/labels (selector.go, Parse): requirements separated by
 * commas, each one of
 *     key | !key | key=value | key==value | key!=value | key in (v1,v2) | key notin (v1,v2)
 * with blanks allowed around tokens. An identifier runs until a blank or one of ",()=!<>";
 * "in" and "notin" are keywords. Each requirement becomes a matchExpression, which
 * tl_selector_parse then validates (key and value rules) and compiles.
 */
enum token { T_END, T_IDENT, T_COMMA, T_OPEN, T_CLOSE, T_EQ, T_NEQ, T_BANG, T_IN, T_NOTIN, T_CMP };

struct lexer {
    const char *p;
    char text[320];
};

static enum token lex(struct lexer *lx)
{
    while (isspace((unsigned char)*lx->p))
        lx->p++;
    lx->text[0] = '\0';
    char c = *lx->p;
    switch (c) {
    case '\0':
        return T_END;
    case ',':
        lx->p++;
        return T_COMMA;
    case '(':
        lx->p++;
        return T_OPEN;
    case ')':
        lx->p++;
        return T_CLOSE;
    case '<':
    case '>':
        lx->p++;
        return T_CMP;
    case '=':
        lx->p += lx->p[1] == '=' ? 2 : 1;
        return T_EQ;
    case '!':
        if (lx->p[1] == '=') {
            lx->p += 2;
            return T_NEQ;
        }
        lx->p++;
        return T_BANG;
    default:
        break;
    }
    size_t len = strcspn(lx->p, " \t\r\n\v\f,()=!<>");
    snprintf(lx->text, sizeof(lx->text), "%.*s", (int)len, lx->p);
    lx->p += len;
    if (strcmp(lx->text, "in") == 0)
        return T_IN;
    if (strcmp(lx->text, "notin") == 0)
        return T_NOTIN;
    return T_IDENT;
}

/* Appends {key, operator, values} to exprs; value may be NULL. False when out of memory. */
static cJSON *add_expression(cJSON *exprs, const char *key, const char *op)
{
    cJSON *e = cJSON_CreateObject();
    if (!e || !cJSON_AddStringToObject(e, "key", key) ||
        !cJSON_AddStringToObject(e, "operator", op) || !cJSON_AddArrayToObject(e, "values") ||
        !cJSON_AddItemToArray(exprs, e)) {
        cJSON_Delete(e);
        return NULL;
    }
    return e;
}

static bool add_value(cJSON *expr, const char *value)
{
    cJSON *values = cJSON_GetObjectItemCaseSensitive(expr, "values");
    cJSON *v = cJSON_CreateString(value);
    if (!v || !cJSON_AddItemToArray(values, v)) {
        cJSON_Delete(v);
        return false;
    }
    return true;
}

/* Parses one requirement starting at token t; leaves the token after it in *next. */
static enum tl_err parse_requirement(struct lexer *lx, enum token t, cJSON *exprs, enum token *next,
                                     char *errbuf, size_t errlen)
{
    bool negated = t == T_BANG;
    if (negated)
        t = lex(lx);
    if (t != T_IDENT) {
        snprintf(errbuf, errlen, "expected a label key%s", negated ? " after \"!\"" : "");
        return TL_EINVAL;
    }
    char key[320];
    snprintf(key, sizeof(key), "%s", lx->text);
    t = lex(lx);
    if (negated || t == T_COMMA || t == T_END) {
        if (negated && t != T_COMMA && t != T_END) {
            snprintf(errbuf, errlen, "\"!%.64s\" must stand alone", key);
            return TL_EINVAL;
        }
        *next = t;
        return add_expression(exprs, key, negated ? "DoesNotExist" : "Exists") ? TL_OK : TL_ENOMEM;
    }
    if (t == T_CMP) {
        snprintf(errbuf, errlen, "\"%.64s\": the operators < and > are not supported", key);
        return TL_EINVAL;
    }
    if (t == T_EQ || t == T_NEQ) {
        cJSON *e = add_expression(exprs, key, t == T_EQ ? "In" : "NotIn");
        t = lex(lx);
        /* An empty value is a value: "key=" selects the label set to "". */
        bool ok = e && add_value(e, t == T_IDENT ? lx->text : "");
        if (t == T_IDENT)
            t = lex(lx);
        else if (t != T_COMMA && t != T_END) {
            snprintf(errbuf, errlen, "\"%.64s\": expected a value", key);
            return TL_EINVAL;
        }
        if (!ok)
            return TL_ENOMEM;
        *next = t;
        return TL_OK;
    }
    if (t != T_IN && t != T_NOTIN) {
        snprintf(errbuf, errlen, "\"%.64s\": expected =, ==, !=, in or notin after the key", key);
        return TL_EINVAL;
    }
    cJSON *e = add_expression(exprs, key, t == T_IN ? "In" : "NotIn");
    if (!e)
        return TL_ENOMEM;
    if (lex(lx) != T_OPEN) {
        snprintf(errbuf, errlen, "\"%.64s\": expected \"(\" after in/notin", key);
        return TL_EINVAL;
    }
    size_t count = 0;
    while (true) {
        t = lex(lx);
        if (t == T_CLOSE && count == 0)
            break;
        if (t != T_IDENT) {
            snprintf(errbuf, errlen, "\"%.64s\": expected a value in the parentheses", key);
            return TL_EINVAL;
        }
        if (!add_value(e, lx->text))
            return TL_ENOMEM;
        count++;
        t = lex(lx);
        if (t == T_CLOSE)
            break;
        if (t != T_COMMA) {
            snprintf(errbuf, errlen, "\"%.64s\": expected \",\" or \")\" between values", key);
            return TL_EINVAL;
        }
    }
    if (count == 0) {
        snprintf(errbuf, errlen, "\"%.64s\": in and notin need at least one value", key);
        return TL_EINVAL;
    }
    *next = lex(lx);
    return TL_OK;
}

/* Keys and values by Kubernetes' rules, named the way the user wrote them. */
static enum tl_err check_expressions(const cJSON *exprs, char *errbuf, size_t errlen)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, exprs)
    {
        const char *key = cJSON_GetObjectItemCaseSensitive(e, "key")->valuestring;
        if (!tl_label_key_valid(key)) {
            snprintf(errbuf, errlen, "invalid label key \"%s\"", key);
            return TL_EINVAL;
        }
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(e, "values"))
        {
            if (!tl_label_value_valid(v->valuestring)) {
                snprintf(errbuf, errlen, "invalid label value \"%s\" for \"%s\"", v->valuestring,
                         key);
                return TL_EINVAL;
            }
        }
    }
    return TL_OK;
}

enum tl_err tl_scan_selector_parse(const char *text, struct tl_selector *out, char *errbuf,
                                   size_t errlen)
{
    cJSON *selector = cJSON_CreateObject();
    cJSON *exprs = cJSON_AddArrayToObject(selector, "matchExpressions");
    enum tl_err result = selector && exprs ? TL_OK : TL_ENOMEM;
    char detail[256] = "";
    struct lexer lx = {text, ""};
    enum token t = result == TL_OK ? lex(&lx) : T_END;
    while (result == TL_OK && t != T_END) {
        result = parse_requirement(&lx, t, exprs, &t, detail, sizeof(detail));
        if (result == TL_OK && t == T_COMMA) {
            t = lex(&lx);
            if (t == T_END) {
                snprintf(detail, sizeof(detail), "a requirement must follow \",\"");
                result = TL_EINVAL;
            }
        }
        else if (result == TL_OK && t != T_END) {
            snprintf(detail, sizeof(detail), "expected \",\" between requirements");
            result = TL_EINVAL;
        }
    }
    if (result == TL_OK)
        result = check_expressions(exprs, detail, sizeof(detail));
    if (result == TL_OK) {
        struct tl_selector compiled;
        result = tl_selector_parse(selector, "--selector", &compiled, detail, sizeof(detail));
        if (result == TL_OK)
            *out = compiled;
    }
    if (result == TL_EINVAL)
        snprintf(errbuf, errlen, "--selector \"%s\": %s", text, detail);
    else if (result != TL_OK)
        snprintf(errbuf, errlen, "--selector: %s", tl_strerror(result));
    cJSON_Delete(selector);
    return result;
}

/* ---- The read-only session and paged lists ---- */

enum tl_err tl_scan_session_open(struct ev_loop *loop, const char *kubeconfig, const char *context,
                                 struct tl_scan_session *out, char *errbuf, size_t errlen)
{
    struct tl_scan_session s = {NULL, NULL, NULL};
    char err[512] = "";
    struct tl_kube_config_options copts = {.kubeconfig = kubeconfig, .context = context};
    enum tl_err result = tl_kube_config_load(&copts, &s.config, err, sizeof(err));
    if (result != TL_OK) {
        snprintf(errbuf, errlen, "cannot load the Kubernetes configuration: %s",
                 err[0] ? err : tl_strerror(result));
        return result;
    }
    s.creds = tl_kube_creds_create(s.config, loop, err, sizeof(err));
    if (!s.creds) {
        snprintf(errbuf, errlen, "cannot get credentials for the API server at %s (%s): %s",
                 s.config->server, s.config->source, err);
        result = TL_EAUTH;
        goto out;
    }
    /* A person waits on the answer: fail fast rather than retry for half a minute. */
    struct tl_kube_client_options kopts = {
        .max_attempts = 3, .backoff_base = 0.2, .backoff_max = 2, .connect_timeout = 5};
    result = tl_kube_client_create(loop, s.config, s.creds, &kopts, &s.client, err, sizeof(err));
    if (result != TL_OK) {
        snprintf(errbuf, errlen, "cannot create a client for the API server at %s: %s",
                 s.config->server, err);
        goto out;
    }
    *out = s;
    return TL_OK;
out:
    tl_scan_session_close(&s);
    return result;
}

void tl_scan_session_close(struct tl_scan_session *session)
{
    if (session == NULL)
        return;
    tl_kube_client_destroy(session->client);
    tl_kube_creds_destroy(session->creds);
    tl_kube_config_destroy(session->config);
    memset(session, 0, sizeof(*session));
}

struct pager {
    struct tl_scan_session *session;
    struct tl_kube_resource res;
    char *ns;
    char *selector;
    char *continue_token;
    tl_scan_item_fn on_item;
    tl_scan_list_done_fn done;
    void *arg;
};

static void pager_free(struct pager *p)
{
    free(p->ns);
    free(p->selector);
    free(p->continue_token);
    free(p);
}

static void pager_finish(struct pager *p, enum tl_err err, long code, const char *message)
{
    tl_scan_list_done_fn done = p->done;
    void *arg = p->arg;
    pager_free(p);
    done(arg, err, code, message);
}

static void on_page(void *arg, struct tl_kube_result *res);

static enum tl_err pager_next(struct pager *p)
{
    struct tl_kube_list_opts opts = {
        .label_selector = p->selector, .continue_token = p->continue_token, .limit = PAGE_SIZE};
    return tl_kube_list(p->session->client, &p->res, p->ns, &opts, on_page, p, NULL);
}

static void list_failure(const struct pager *p, const struct tl_kube_result *res, char *buf,
                         size_t len)
{
    char what[512];
    char where[100] = "all namespaces";
    if (p->ns)
        snprintf(where, sizeof(where), "namespace %s", p->ns);
    snprintf(what, sizeof(what), "listing %s%s%s in %s", p->res.resource,
             p->res.group[0] ? "." : "", p->res.group, where);
    const char *server = p->session->config->server;
    if (res->code == 0) {
        snprintf(buf, len, "cannot reach the API server at %s (%s): %s", server, what,
                 tl_strerror(res->err));
        return;
    }
    char status[300] = "";
    if (res->status)
        tl_kube_status_format(res->status, status, sizeof(status));
    else
        snprintf(status, sizeof(status), "HTTP %ld", res->code);
    snprintf(buf, len, "the API server at %s answered %s, %s", server, status, what);
}

static void on_page(void *arg, struct tl_kube_result *res)
{
    struct pager *p = arg;
    if (res->err != TL_OK) {
        char message[800];
        list_failure(p, res, message, sizeof(message));
        pager_finish(p, res->err, res->code, message);
        return;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(res->body, "items"))
    {
        enum tl_err result = p->on_item(p->arg, item);
        if (result != TL_OK) {
            pager_finish(p, result, res->code, tl_strerror(result));
            return;
        }
    }
    const cJSON *next = tl_json_get(res->body, "metadata", "continue", NULL);
    free(p->continue_token);
    p->continue_token = NULL;
    if (cJSON_IsString(next) && next->valuestring[0] != '\0') {
        p->continue_token = strdup(next->valuestring);
        enum tl_err result = p->continue_token ? pager_next(p) : TL_ENOMEM;
        if (result != TL_OK)
            pager_finish(p, result, 0, tl_strerror(result));
        return;
    }
    pager_finish(p, TL_OK, res->code, NULL);
}

enum tl_err tl_scan_list(struct tl_scan_session *session, const struct tl_kube_resource *res,
                         const char *ns, const char *selector, tl_scan_item_fn on_item,
                         tl_scan_list_done_fn done, void *arg)
{
    struct pager *p = calloc(1, sizeof(*p));
    if (!p)
        return TL_ENOMEM;
    p->session = session;
    p->res = *res;
    p->on_item = on_item;
    p->done = done;
    p->arg = arg;
    if ((ns && !(p->ns = strdup(ns))) || (selector && !(p->selector = strdup(selector)))) {
        pager_free(p);
        return TL_ENOMEM;
    }
    enum tl_err result = pager_next(p);
    if (result != TL_OK)
        pager_free(p);
    return result;
}

void tl_scan_redact_url(const char *url, char *buf, size_t len)
{
    const char *scheme_end = strstr(url, "://");
    const char *host = scheme_end ? scheme_end + 3 : url;
    size_t authority = strcspn(host, "/?#");
    const char *at = memchr(host, '@', authority);
    if (!at) {
        snprintf(buf, len, "%s", url);
        return;
    }
    snprintf(buf, len, "%.*s%s", (int)(host - url), url, at + 1);
}

/* ---- The scan ---- */

struct found_workload {
    char *ns;
    char *name;
    struct tl_workload *w;
};

struct found_hpa {
    char *ns;
    struct tl_hpa *h;
};

/* One list to make: a kind in a namespace (NULL: all). */
struct list_job {
    struct tl_kube_resource res;
    const char *ns;
    enum tl_workload_kind kind; /* 0 for HorizontalPodAutoscalers */
};

struct scan {
    const struct tl_scan_options *opts;
    struct ev_loop *loop;
    struct tl_scan_session session;
    struct tl_http *http;
    struct tl_usage_store *store;
    struct tl_usage_collector *collector;
    struct tl_policy policy;
    struct tl_usage_settings settings;
    struct tl_cost_rates rates;
    char prometheus[512]; /* the URL without credentials */
    char *label_selector; /* what the API server filters on; NULL for none */
    bool progress;

    struct list_job *jobs;
    size_t njobs;
    size_t next_job;

    struct found_workload *found;
    size_t nfound;
    size_t found_cap;
    size_t ignored;
    struct found_hpa *hpas;
    size_t nhpas;
    size_t hpa_cap;
    bool hpas_unknown; /* the HPA list was refused: advice ignores HPAs */

    char **namespaces; /* with workloads, sorted */
    size_t nnamespaces;
    size_t next_ns;
    size_t running;
    size_t collected;

    bool failed;
    char error[1300];
};

static void fail(struct scan *s, const char *message)
{
    if (!s->failed) {
        s->failed = true;
        snprintf(s->error, sizeof(s->error), "%s", message);
    }
    ev_break(s->loop, EVBREAK_ALL);
}

static void progress_line(struct scan *s, const char *text)
{
    if (s->progress) {
        fprintf(stderr, "\r\033[K%s", text);
        fflush(stderr);
    }
}

static void progress_namespaces(struct scan *s)
{
    if (!s->progress)
        return;
    char bar[PROGRESS_WIDTH + 1];
    size_t filled = s->nnamespaces ? s->collected * PROGRESS_WIDTH / s->nnamespaces : 0;
    for (size_t i = 0; i < PROGRESS_WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[PROGRESS_WIDTH] = '\0';
    char text[160];
    snprintf(text, sizeof(text), "Reading usage from Prometheus [%s] %zu/%zu namespaces", bar,
             s->collected, s->nnamespaces);
    progress_line(s, text);
}

static enum tl_err add_workload(struct scan *s, const char *ns, const char *name,
                                struct tl_workload *w)
{
    if (s->nfound == s->found_cap) {
        size_t cap = s->found_cap ? s->found_cap * 2 : 64;
        struct found_workload *grown = realloc(s->found, cap * sizeof(*grown));
        if (!grown)
            return TL_ENOMEM;
        s->found = grown;
        s->found_cap = cap;
    }
    struct found_workload *f = &s->found[s->nfound];
    f->ns = strdup(ns);
    f->name = strdup(name);
    f->w = w;
    if (!f->ns || !f->name) {
        free(f->ns);
        free(f->name);
        return TL_ENOMEM;
    }
    s->nfound++;
    return TL_OK;
}

static enum tl_err add_hpa(struct scan *s, const char *ns, struct tl_hpa *h)
{
    if (s->nhpas == s->hpa_cap) {
        size_t cap = s->hpa_cap ? s->hpa_cap * 2 : 16;
        struct found_hpa *grown = realloc(s->hpas, cap * sizeof(*grown));
        if (!grown)
            return TL_ENOMEM;
        s->hpas = grown;
        s->hpa_cap = cap;
    }
    s->hpas[s->nhpas].ns = strdup(ns);
    if (!s->hpas[s->nhpas].ns)
        return TL_ENOMEM;
    s->hpas[s->nhpas++].h = h;
    return TL_OK;
}

static enum tl_err on_item(void *arg, const cJSON *item)
{
    struct scan *s = arg;
    const struct list_job *job = &s->jobs[s->next_job - 1];
    const cJSON *ns = tl_json_get(item, "metadata", "namespace", NULL);
    const cJSON *name = tl_json_get(item, "metadata", "name", NULL);
    if (!cJSON_IsString(ns) || !cJSON_IsString(name))
        return TL_OK;
    if (job->kind == 0) {
        struct tl_hpa *h = NULL;
        if (tl_hpa_from_json(item, &h) != TL_OK)
            return TL_OK; /* an HPA without a target scales nothing we size */
        enum tl_err result = add_hpa(s, ns->valuestring, h);
        if (result != TL_OK)
            tl_hpa_free(h);
        return result;
    }
    struct tl_workload *w = NULL;
    enum tl_err result = tl_workload_from_json(item, job->kind, &w);
    if (result != TL_OK)
        return result == TL_ENOMEM ? result : TL_OK;
    if (w->ignored || !tl_selector_matches(&s->opts->selector, &w->labels)) {
        s->ignored += w->ignored;
        tl_workload_free(w);
        return TL_OK;
    }
    result = add_workload(s, ns->valuestring, name->valuestring, w);
    if (result != TL_OK)
        tl_workload_free(w);
    return result;
}

static void start_collection(struct scan *s);

static void list_next(struct scan *s);

static void on_listed(void *arg, enum tl_err err, long code, const char *message)
{
    struct scan *s = arg;
    const struct list_job *job = &s->jobs[s->next_job - 1];
    if (err != TL_OK) {
        /* HPAs only refine the advice: without the right to list them, go on without. */
        if (job->kind == 0 && (code == 403 || code == 404)) {
            s->hpas_unknown = true;
        }
        else {
            fail(s, message);
            return;
        }
    }
    list_next(s);
}

static void list_next(struct scan *s)
{
    if (s->next_job == s->njobs) {
        start_collection(s);
        return;
    }
    const struct list_job *job = &s->jobs[s->next_job++];
    char text[200];
    snprintf(text, sizeof(text), "Listing %s%s%s... %zu workloads so far", job->res.resource,
             job->ns ? " in " : "", job->ns ? job->ns : "", s->nfound);
    progress_line(s, text);
    enum tl_err result = tl_scan_list(&s->session, &job->res, job->ns,
                                      job->kind ? s->label_selector : NULL, on_item, on_listed, s);
    if (result != TL_OK) {
        char message[200];
        snprintf(message, sizeof(message), "cannot start listing %s: %s", job->res.resource,
                 tl_strerror(result));
        fail(s, message);
    }
}

static void start_next_namespace(struct scan *s);

/* The collector's messages name the URL as given, credentials and all: never print those. */
static void redact_message(const char *message, const char *url, const char *redacted, char *buf,
                           size_t len)
{
    size_t used = 0;
    size_t url_len = strlen(url);
    buf[0] = '\0';
    for (const char *p = message; *p && used + 1 < len;) {
        const char *hit = url_len ? strstr(p, url) : NULL;
        size_t plain = hit ? (size_t)(hit - p) : strlen(p);
        int n = snprintf(buf + used, len - used, "%.*s%s", (int)plain, p, hit ? redacted : "");
        if (n < 0)
            break;
        used += (size_t)n < len - used ? (size_t)n : len - used - 1;
        p = hit ? hit + url_len : p + plain;
    }
}

static void on_cycle(void *arg, const struct tl_usage_cycle *cycle)
{
    struct scan *s = arg;
    s->running--;
    if (cycle->err != TL_OK) {
        char detail[600];
        redact_message(cycle->message ? cycle->message : tl_strerror(cycle->err),
                       s->opts->prometheus_url, s->prometheus, detail, sizeof(detail));
        char message[1300];
        snprintf(message, sizeof(message),
                 "cannot read usage history from Prometheus at %s (namespace %s): %s",
                 s->prometheus, cycle->ns, detail);
        fail(s, message);
        return;
    }
    s->collected++;
    progress_namespaces(s);
    if (s->collected == s->nnamespaces) {
        ev_break(s->loop, EVBREAK_ALL);
        return;
    }
    start_next_namespace(s);
}

static void start_next_namespace(struct scan *s)
{
    while (s->running < PARALLEL_NS && s->next_ns < s->nnamespaces && !s->failed) {
        const char *ns = s->namespaces[s->next_ns++];
        size_t count = 0;
        for (size_t i = 0; i < s->nfound; i++)
            count += strcmp(s->found[i].ns, ns) == 0;
        struct tl_workload_ref *refs = calloc(count ? count : 1, sizeof(*refs));
        if (!refs) {
            fail(s, "out of memory");
            return;
        }
        size_t n = 0;
        for (size_t i = 0; i < s->nfound; i++) {
            if (strcmp(s->found[i].ns, ns) == 0) {
                refs[n].kind = s->found[i].w->kind;
                refs[n++].name = s->found[i].name;
            }
        }
        enum tl_err result =
            tl_usage_collect(s->collector, ns, refs, n, &s->settings, ev_now(s->loop), on_cycle, s);
        free(refs);
        if (result != TL_OK) {
            char message[300];
            snprintf(message, sizeof(message), "cannot query Prometheus for namespace %s: %s", ns,
                     tl_strerror(result));
            fail(s, message);
            return;
        }
        s->running++;
    }
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void start_collection(struct scan *s)
{
    for (size_t i = 0; i < s->nfound; i++) {
        bool seen = false;
        for (size_t j = 0; j < s->nnamespaces && !seen; j++)
            seen = strcmp(s->namespaces[j], s->found[i].ns) == 0;
        if (seen)
            continue;
        char **grown = realloc(s->namespaces, (s->nnamespaces + 1) * sizeof(*grown));
        if (!grown) {
            fail(s, "out of memory");
            return;
        }
        s->namespaces = grown;
        grown[s->nnamespaces] = strdup(s->found[i].ns);
        if (!grown[s->nnamespaces]) {
            fail(s, "out of memory");
            return;
        }
        s->nnamespaces++;
    }
    qsort(s->namespaces, s->nnamespaces, sizeof(*s->namespaces), compare_strings);
    if (s->nnamespaces == 0) {
        ev_break(s->loop, EVBREAK_ALL);
        return;
    }
    progress_namespaces(s);
    start_next_namespace(s);
}

/* The default policy with the flags' changes: the same parser and defaults as a real policy. */
static enum tl_err build_policy(const struct tl_scan_options *o, struct tl_policy *out,
                                char *errbuf, size_t errlen)
{
    cJSON *spec = cJSON_CreateObject();
    cJSON *metrics = cJSON_AddObjectToObject(spec, "metrics");
    cJSON *resources = cJSON_AddObjectToObject(spec, "resources");
    cJSON *cpu = cJSON_AddObjectToObject(resources, "cpu");
    cJSON *memory = cJSON_AddObjectToObject(resources, "memory");
    cJSON *hpa = cJSON_AddObjectToObject(spec, "hpa");
    cJSON *pricing = cJSON_AddObjectToObject(spec, "pricing");
    bool ok = metrics && cpu && memory && hpa && pricing &&
              cJSON_AddStringToObject(metrics, "history", o->history) &&
              cJSON_AddStringToObject(metrics, "source", "Prometheus") &&
              cJSON_AddBoolToObject(hpa, "enabled", true) &&
              cJSON_AddStringToObject(pricing, "region", o->region);
    if (ok && o->cpu_percentile > 0)
        ok = cJSON_AddNumberToObject(cpu, "percentile", o->cpu_percentile) != NULL;
    if (ok && o->memory_percentile > 0)
        ok = cJSON_AddNumberToObject(memory, "percentile", o->memory_percentile) != NULL;
    if (ok && o->cpu_headroom >= 0)
        ok = cJSON_AddNumberToObject(cpu, "headroomPercent", o->cpu_headroom) != NULL;
    if (ok && o->memory_headroom >= 0)
        ok = cJSON_AddNumberToObject(memory, "headroomPercent", o->memory_headroom) != NULL;
    enum tl_err result = ok ? tl_policy_parse(spec, out, errbuf, errlen) : TL_ENOMEM;
    cJSON_Delete(spec);
    return result;
}

static enum tl_err plan_lists(struct scan *s)
{
    static const struct {
        const char *api_version;
        const char *name;
        enum tl_workload_kind kind;
    } kinds[] = {{"apps/v1", "deployments", TL_KIND_DEPLOYMENT},
                 {"apps/v1", "statefulsets", TL_KIND_STATEFULSET},
                 {"apps/v1", "daemonsets", TL_KIND_DAEMONSET},
                 {"autoscaling/v2", "horizontalpodautoscalers", 0}};
    const struct tl_scan_options *o = s->opts;
    size_t nns = o->nnamespaces ? o->nnamespaces : 1;
    s->jobs = calloc(nns * 4, sizeof(*s->jobs));
    if (!s->jobs)
        return TL_ENOMEM;
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        if (kinds[k].kind && !(o->kinds & (unsigned)kinds[k].kind))
            continue;
        for (size_t n = 0; n < nns; n++) {
            struct list_job *job = &s->jobs[s->njobs++];
            enum tl_err result =
                tl_kube_resource_builtin(kinds[k].api_version, kinds[k].name, &job->res);
            if (result != TL_OK)
                return result;
            job->ns = o->nnamespaces ? o->namespaces[n] : NULL;
            job->kind = kinds[k].kind;
        }
    }
    return TL_OK;
}

static int compare_found(const void *a, const void *b)
{
    const struct found_workload *x = a;
    const struct found_workload *y = b;
    int c = strcmp(x->ns, y->ns);
    if (c == 0)
        c = strcmp(tl_workload_kind_name(x->w->kind), tl_workload_kind_name(y->w->kind));
    return c ? c : strcmp(x->name, y->name);
}

static const struct tl_hpa *hpa_for(const struct scan *s, const struct found_workload *f)
{
    const char *kind = tl_workload_kind_name(f->w->kind);
    for (size_t i = 0; i < s->nhpas; i++) {
        const struct tl_hpa *h = s->hpas[i].h;
        if (strcmp(s->hpas[i].ns, f->ns) == 0 && strcmp(h->target_kind, kind) == 0 &&
            strcmp(h->target_name, f->name) == 0)
            return h;
    }
    return NULL;
}

static double number_in(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsNumber(item))
        return item->valuedouble;
    if (!cJSON_IsString(item))
        return 0;
    char *end = NULL;
    double v = strtod(item->valuestring, &end);
    return end != item->valuestring && isfinite(v) ? v : 0;
}

static void copy_string(const cJSON *obj, const char *key, char *buf, size_t len)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    snprintf(buf, len, "%s", cJSON_IsString(item) ? item->valuestring : "");
}

/* Takes what the operator would write in status (confidence, explanation, savings, HPA). */
static void read_status(const cJSON *status, struct tl_scan_workload *out)
{
    const cJSON *confidence = cJSON_GetObjectItemCaseSensitive(status, "confidence");
    if (!cJSON_IsString(confidence) ||
        !tl_confidence_parse(confidence->valuestring, &out->confidence))
        out->confidence = TL_CONFIDENCE_NONE;
    copy_string(status, "explanation", out->explanation, sizeof(out->explanation));
    const cJSON *savings = cJSON_GetObjectItemCaseSensitive(status, "savings");
    out->savings_usd = number_in(savings, "monthlyUSD");
    out->cpu_saved = number_in(savings, "cpuCores");
    out->memory_saved = number_in(savings, "memoryBytes");
    const cJSON *hpa = cJSON_GetObjectItemCaseSensitive(status, "hpa");
    const cJSON *rec = cJSON_GetObjectItemCaseSensitive(hpa, "recommended");
    if (cJSON_IsObject(rec)) {
        out->hpa.present = true;
        out->hpa.existing = cJSON_GetObjectItemCaseSensitive(hpa, "current") != NULL;
        out->hpa.min_replicas = (int)number_in(rec, "minReplicas");
        out->hpa.max_replicas = (int)number_in(rec, "maxReplicas");
        out->hpa.target_percent = (int)number_in(rec, "targetUtilization");
        copy_string(rec, "metric", out->hpa.metric, sizeof(out->hpa.metric));
        copy_string(hpa, "reason", out->hpa.reason, sizeof(out->hpa.reason));
    }
}

/*
 * Advises one workload the way the operator does (rec_reconcile.c, advise): each container
 * from its history with the policy's rule, an HPA's CPU target taken into account; then the
 * status builder gives the confidence, explanation, savings and HPA advice a Recommendation
 * would carry, so a scan and the operator never disagree on the numbers.
 */
static enum tl_err advise_workload(const struct scan *s, const struct found_workload *f, double now,
                                   struct tl_scan_workload *out,
                                   struct tl_scan_container *containers)
{
    const struct tl_workload *w = f->w;
    const struct tl_hpa *hpa = hpa_for(s, f);
    size_t n = w->ncontainers < MAX_CONTAINERS ? w->ncontainers : MAX_CONTAINERS;
    struct tl_histogram empty_cpu;
    struct tl_histogram empty_memory;
    tl_histogram_init(&empty_cpu, &tl_histogram_cpu_defaults);
    tl_histogram_init(&empty_memory, &tl_histogram_memory_defaults);
    struct tl_advice advice[MAX_CONTAINERS];
    const struct tl_advice *refs[MAX_CONTAINERS];
    double window = (double)s->policy.metrics.history_ms / 1000;
    double analyzed_at = tl_usage_store_covered_until(s->store, f->ns);
    for (size_t i = 0; i < n; i++) {
        const struct tl_container *c = &w->containers[i];
        struct tl_usage usage = {.cpu = &empty_cpu,
                                 .memory = &empty_memory,
                                 .throttled_ratio = -1,
                                 .now = now,
                                 .window = window};
        tl_usage_store_usage(s->store, f->ns, w->kind, f->name, c->name, now, window, &usage);
        if (hpa && hpa->cpu_target_percent > 0 && c->type == TL_CONTAINER_APP)
            usage.hpa_cpu_target_percent = hpa->cpu_target_percent;
        tl_recommend_container(&s->policy.recommend, &usage, &c->resources, &advice[i]);
        refs[i] = &advice[i];
    }
    struct tl_workload view = *w;
    view.ncontainers = n;
    struct tl_rec_input in = {.workload = &view,
                              .name = f->name,
                              .policy = &s->policy,
                              .hpa = hpa,
                              .advice = refs,
                              .rates = s->rates,
                              .generation = 1,
                              .now = now,
                              .analyzed_at = analyzed_at};
    cJSON *status = tl_rec_status_build(&in);
    if (!status)
        return TL_ENOMEM;
    memset(out, 0, sizeof(*out));
    snprintf(out->ns, sizeof(out->ns), "%s", f->ns);
    snprintf(out->name, sizeof(out->name), "%s", f->name);
    out->kind = w->kind;
    out->replicas = hpa && hpa->current_replicas > 0 ? hpa->current_replicas
                                                     : (w->replicas > 0 ? w->replicas : 0);
    read_status(status, out);
    cJSON_Delete(status);
    for (size_t i = 0; i < n; i++) {
        const struct tl_container *c = &w->containers[i];
        struct tl_scan_container *sc = &containers[i];
        memset(sc, 0, sizeof(*sc));
        snprintf(sc->name, sizeof(sc->name), "%s", c->name);
        sc->type = c->type;
        sc->confidence = advice[i].confidence;
        sc->current = c->resources;
        bool sized = advice[i].confidence != TL_CONFIDENCE_NONE;
        sc->recommended = sized ? advice[i].recommended : c->resources;
        sc->lower = advice[i].lower;
        sc->upper = advice[i].upper;
        sc->usage = advice[i].usage;
        snprintf(sc->explanation, sizeof(sc->explanation), "%s", advice[i].explanation);
        /* The share of the workload's savings (rec_status.c: requests of the containers that
         * run all along, times the replicas, at the region's rates). */
        if (c->type != TL_CONTAINER_INIT)
            sc->savings_usd = tl_cost_monthly(
                &s->rates, (sc->current.cpu_request - sc->recommended.cpu_request) * out->replicas,
                (sc->current.memory_request - sc->recommended.memory_request) * out->replicas /
                    GIB);
    }
    out->containers = containers;
    out->ncontainers = n;
    return TL_OK;
}

static int print_report(struct scan *s)
{
    qsort(s->found, s->nfound, sizeof(*s->found), compare_found);
    size_t total = 0;
    for (size_t i = 0; i < s->nfound; i++)
        total += s->found[i].w->ncontainers < MAX_CONTAINERS ? s->found[i].w->ncontainers
                                                             : MAX_CONTAINERS;
    /* One block for every container; each workload points at its run of it. */
    struct tl_scan_workload *workloads = calloc(s->nfound ? s->nfound : 1, sizeof(*workloads));
    struct tl_scan_container *containers = calloc(total ? total : 1, sizeof(*containers));
    int code = TL_EXIT_FAIL;
    enum tl_err result = workloads && containers ? TL_OK : TL_ENOMEM;
    double now = ev_now(s->loop);
    size_t used = 0;
    for (size_t i = 0; i < s->nfound && result == TL_OK; i++) {
        result = advise_workload(s, &s->found[i], now, &workloads[i], containers + used);
        used += workloads[i].ncontainers;
    }
    if (result != TL_OK) {
        fprintf(stderr, "tailor scan: %s\n", tl_strerror(result));
        goto out;
    }
    struct tl_scan_report report = {
        .workloads = workloads,
        .count = s->nfound,
        .namespaces = s->opts->nnamespaces ? s->opts->nnamespaces : s->nnamespaces,
        .context = s->session.config->context_name,
        .prometheus = s->prometheus,
        .history = (double)s->policy.metrics.history_ms / 1000,
        .region = s->opts->region,
        .generated_at = now,
    };
    result = tl_scan_output_write(&report, s->opts->output, stdout);
    if (result != TL_OK) {
        fprintf(stderr, "tailor scan: writing the report failed: %s\n", tl_strerror(result));
        goto out;
    }
    if (s->hpas_unknown)
        fprintf(stderr, "tailor scan: note: not allowed to list HorizontalPodAutoscalers; CPU "
                        "advice does not account for them\n");
    if (s->ignored > 0)
        fprintf(stderr,
                "tailor scan: note: %zu workload%s annotated tailor.dev/ignore=true %s "
                "left out\n",
                s->ignored, s->ignored == 1 ? "" : "s", s->ignored == 1 ? "was" : "were");
    code = TL_EXIT_OK;
out:
    free(containers);
    free(workloads);
    return code;
}

static void scan_cleanup(struct scan *s)
{
    tl_usage_collector_destroy(s->collector);
    tl_usage_store_destroy(s->store);
    tl_http_destroy(s->http);
    tl_scan_session_close(&s->session);
    for (size_t i = 0; i < s->nfound; i++) {
        free(s->found[i].ns);
        free(s->found[i].name);
        tl_workload_free(s->found[i].w);
    }
    free(s->found);
    for (size_t i = 0; i < s->nhpas; i++) {
        free(s->hpas[i].ns);
        tl_hpa_free(s->hpas[i].h);
    }
    free(s->hpas);
    for (size_t i = 0; i < s->nnamespaces; i++)
        free(s->namespaces[i]);
    free(s->namespaces);
    free(s->jobs);
    free(s->label_selector);
    tl_policy_free(&s->policy);
}

/* The token of --prometheus-token-file without its line break; NULL (said why) on failure. */
static char *read_token(const char *path)
{
    char *text = NULL;
    size_t len = 0;
    enum tl_err result = tl_kube_config_read_file(path, (size_t)64 * 1024, &text, &len);
    if (result != TL_OK) {
        fprintf(stderr, "tailor scan: cannot read --prometheus-token-file %s: %s\n", path,
                result == TL_EIO ? strerror(errno) : tl_strerror(result));
        return NULL;
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        text[--len] = '\0';
    if (len == 0 || strchr(text, '\n')) {
        fprintf(stderr, "tailor scan: --prometheus-token-file %s: expected one line with a token\n",
                path);
        free(text);
        return NULL;
    }
    return text;
}

int tl_scan_run(const struct tl_scan_options *opts)
{
    struct scan s;
    memset(&s, 0, sizeof(s));
    s.opts = opts;
    s.loop = ev_default_loop(0);
    s.progress = !opts->no_progress && isatty(STDERR_FILENO);
    /* The report is the output; the library's own progress logs would only get in its way. */
    tl_log_configure(TL_LOG_ERROR, TL_LOG_TEXT, NULL);
    char err[1024] = "";
    int code = TL_EXIT_FAIL;
    if (build_policy(opts, &s.policy, err, sizeof(err)) != TL_OK) {
        fprintf(stderr, "tailor scan: %s\n", err);
        return TL_EXIT_USAGE;
    }
    tl_scan_redact_url(opts->prometheus_url, s.prometheus, sizeof(s.prometheus));
    tl_usage_settings_from_policy(&s.policy, &s.settings);
    if (tl_cost_rates_for_region(opts->region, &s.rates) != TL_OK) {
        fprintf(stderr, "tailor scan: no prices for region %s\n", opts->region);
        code = TL_EXIT_USAGE;
        goto out;
    }
    if (!tl_selector_is_empty(&opts->selector) &&
        !(s.label_selector = tl_selector_to_string(&opts->selector))) {
        fprintf(stderr, "tailor scan: out of memory\n");
        goto out;
    }
    if (tl_scan_session_open(s.loop, opts->kubeconfig, opts->context, &s.session, err,
                             sizeof(err)) != TL_OK) {
        fprintf(stderr, "tailor scan: %s\n", err);
        goto out;
    }
    char *token = NULL;
    if (opts->prometheus_token_file && !(token = read_token(opts->prometheus_token_file)))
        goto out;
    struct tl_prom_options popts = {.url = opts->prometheus_url,
                                    .bearer_token = token,
                                    .headers = opts->prometheus_headers,
                                    .timeout = 60};
    struct tl_prom *prom = NULL;
    s.http = tl_http_create(s.loop);
    s.store = tl_usage_store_create();
    if (s.http && s.store)
        prom = tl_prom_create(s.loop, s.http, &popts);
    if (prom && !(s.collector = tl_usage_collector_create(prom, s.store)))
        tl_prom_destroy(prom);
    /* The client keeps its own copy. */
    if (token)
        memset(token, 0, strlen(token));
    free(token);
    if (!s.collector || plan_lists(&s) != TL_OK) {
        fprintf(stderr, "tailor scan: cannot set up the Prometheus client for %s\n", s.prometheus);
        goto out;
    }
    list_next(&s);
    if (!s.failed)
        ev_run(s.loop, 0);
    progress_line(&s, "");
    if (s.failed) {
        fprintf(stderr, "tailor scan: %s\n", s.error);
        goto out;
    }
    code = print_report(&s);
out:
    scan_cleanup(&s);
    return code;
}
