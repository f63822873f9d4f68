/* Tests for kubeconfig: file loading, KUBECONFIG merging, in-cluster configuration, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kubeconfig.h"

#define DATA TL_TEST_DATA_DIR "/kubeconfig"

/* Every test starts from an environment that points nowhere, and a scratch directory. */
struct env {
    char dir[256];
    char err[1024];
    struct tl_kube_config *cfg;
};

static const char *const cleared[] = {"KUBECONFIG", "KUBERNETES_SERVICE_HOST",
                                      "KUBERNETES_SERVICE_PORT", "TAILOR_SA_DIR"};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    if (!e)
        return -1;
    const char *tmp = getenv("TMPDIR");
    (void)snprintf(e->dir, sizeof(e->dir), "%s/tl_kubeconfig_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(e->dir))
        return -1;
    for (size_t i = 0; i < sizeof(cleared) / sizeof(cleared[0]); i++)
        unsetenv(cleared[i]);
    setenv("HOME", e->dir, 1);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    tl_kube_config_destroy(e->cfg);
    char cmd[300];
    (void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
        return -1;
    free(e);
    return 0;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    (void)snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static enum tl_err load_file(struct env *e, const char *path, const char *context)
{
    struct tl_kube_config_options opts = {.kubeconfig = path, .context = context};
    return tl_kube_config_load(&opts, &e->cfg, e->err, sizeof(e->err));
}

static enum tl_err parse(struct env *e, const char *text)
{
    return tl_kube_config_parse(text, strlen(text), "/etc/kc/config", NULL, &e->cfg, e->err,
                                sizeof(e->err));
}

#define assert_err_contains(e, s)                                                                  \
    do {                                                                                           \
        if (!strstr((e)->err, (s)))                                                                \
            fail_msg("message \"%s\" lacks \"%s\"", (e)->err, (s));                                \
    } while (0)

/* ---- one file ---- */

static void current_context_is_used(void **state)
{
    struct env *e = *state;
    assert_int_equal(load_file(e, DATA "/multi.yaml", NULL), TL_OK);
    const struct tl_kube_config *c = e->cfg;
    assert_string_equal(c->context_name, "dev");
    assert_string_equal(c->source, DATA "/multi.yaml");
    assert_string_equal(c->server, "https://127.0.0.1:8443");
    assert_string_equal(c->token, "dev-token");
    assert_string_equal(c->namespace, "default");
    const char *pem = "-----BEGIN CERTIFICATE-----\nREVWLUNB\n-----END CERTIFICATE-----\n";
    assert_int_equal(c->ca_data_len, strlen(pem));
    assert_memory_equal(c->ca_data, pem, strlen(pem));
    assert_null(c->ca_file);
    assert_null(c->exec);
}

static void context_flag_picks_another_with_relative_paths(void **state)
{
    struct env *e = *state;
    assert_int_equal(load_file(e, DATA "/multi.yaml", "prod"), TL_OK);
    const struct tl_kube_config *c = e->cfg;
    assert_string_equal(c->context_name, "prod");
    /* The trailing slash is dropped so request paths can be appended. */
    assert_string_equal(c->server, "https://prod.example.com:6443");
    assert_string_equal(c->ca_file, DATA "/certs/ca.crt");
    assert_string_equal(c->client_cert_file, DATA "/certs/admin.crt");
    assert_string_equal(c->client_key_file, DATA "/certs/admin.key");
    assert_string_equal(c->tls_server_name, "api.prod.internal");
    assert_string_equal(c->proxy_url, "http://proxy.example.com:3128");
    assert_string_equal(c->namespace, "shop");
    assert_null(c->token);
}

static void token_file_is_resolved(void **state)
{
    struct env *e = *state;
    assert_int_equal(load_file(e, DATA "/multi.yaml", "robot"), TL_OK);
    assert_string_equal(e->cfg->token_file, DATA "/tokens/token");
    assert_string_equal(e->cfg->namespace, "ci");
}

static void unknown_context_names_it_and_the_file(void **state)
{
    struct env *e = *state;
    assert_int_equal(load_file(e, DATA "/multi.yaml", "staging"), TL_ENOTFOUND);
    assert_null(e->cfg);
    assert_err_contains(e, "kubeconfig " DATA "/multi.yaml");
    assert_err_contains(e, "context \"staging\" not found");
}

static void json_form_with_tabs_parses(void **state)
{
    struct env *e = *state;
    assert_int_equal(load_file(e, DATA "/json.json", NULL), TL_OK);
    assert_string_equal(e->cfg->server, "http://127.0.0.1:8080");
    assert_string_equal(e->cfg->token, "json-token");
    assert_string_equal(e->cfg->namespace, "tools");
}

static void broken_yaml_gives_line_and_column(void **state)
{
    struct env *e = *state;
    assert_int_equal(load_file(e, DATA "/broken.yaml", NULL), TL_EINVAL);
    assert_err_contains(e, "kubeconfig " DATA "/broken.yaml: line 4 column 18: ");
    assert_err_contains(e, "mapping values are not allowed");
}

static void missing_server_names_the_field(void **state)
{
    struct env *e = *state;
    assert_int_equal(load_file(e, DATA "/missing-server.yaml", NULL), TL_EINVAL);
    assert_err_contains(e, "missing-server.yaml: clusters[0].cluster: server: missing");
}

static void explicit_kubeconfig_must_exist(void **state)
{
    struct env *e = *state;
    assert_int_equal(load_file(e, DATA "/no-such-file.yaml", NULL), TL_ENOTFOUND);
    assert_err_contains(e, "no-such-file.yaml: no such file");
}

static void directory_is_not_a_kubeconfig(void **state)
{
    struct env *e = *state;
    assert_int_equal(load_file(e, DATA, NULL), TL_EIO);
    assert_err_contains(e, "kubeconfig " DATA ": ");
}

static void exec_user_is_read_whole(void **state)
{
    struct env *e = *state;
    assert_int_equal(load_file(e, DATA "/exec.yaml", NULL), TL_OK);
    const struct tl_kube_exec *x = e->cfg->exec;
    assert_non_null(x);
    /* A command with a slash is a path relative to the kubeconfig's directory. */
    assert_string_equal(x->command, DATA "/bin/get-token");
    assert_string_equal(x->args[0], "--cluster");
    assert_string_equal(x->args[1], "eks");
    assert_string_equal(x->args[2], "--verbose=false");
    assert_null(x->args[3]);
    assert_string_equal(x->env[0], "AWS_PROFILE=prod");
    assert_string_equal(x->env[1], "EMPTY=");
    assert_null(x->env[2]);
    assert_string_equal(x->api_version, "client.authentication.k8s.io/v1");
    assert_int_equal(x->interactive_mode, TL_KUBE_EXEC_NEVER);
    assert_true(x->provide_cluster_info);
    assert_string_equal(x->install_hint, "install get-token from example.com");
    assert_string_equal(x->cluster_config, "{\"audience\":\"tailor\",\"region\":\"eu-west-1\"}");
}

static void exec_command_without_slash_stays_a_name(void **state)
{
    struct env *e = *state;
    assert_int_equal(parse(e, "current-context: c\n"
                              "clusters: [{name: k, cluster: {server: 'https://k'}}]\n"
                              "users: [{name: u, user: {exec: {apiVersion: "
                              "client.authentication.k8s.io/v1beta1, command: aws}}}]\n"
                              "contexts: [{name: c, context: {cluster: k, user: u}}]\n"),
                     TL_OK);
    assert_string_equal(e->cfg->exec->command, "aws");
    /* v1beta1 defaults interactiveMode to IfAvailable, as client-go does. */
    assert_int_equal(e->cfg->exec->interactive_mode, TL_KUBE_EXEC_IF_AVAILABLE);
    assert_null(e->cfg->exec->args[0]);
    assert_null(e->cfg->exec->cluster_config);
}

/* A document with one cluster "k" and context "c" using user "u" whose body is user_yaml. */
static enum tl_err parse_user(struct env *e, const char *user_yaml)
{
    char text[2048];
    (void)snprintf(text, sizeof(text),
                   "current-context: c\n"
                   "clusters:\n- name: k\n  cluster:\n    server: https://k.example.com\n"
                   "users:\n- name: u\n  user:\n%s"
                   "contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n",
                   user_yaml);
    return parse(e, text);
}

static void exec_needs_interactive_mode_in_v1(void **state)
{
    struct env *e = *state;
    assert_int_equal(parse_user(e, "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                                   "      command: x\n"),
                     TL_EINVAL);
    assert_err_contains(e, "users[0].user.exec: interactiveMode: missing");
}

static void exec_always_interactive_is_refused(void **state)
{
    struct env *e = *state;
    assert_int_equal(parse_user(e, "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                                   "      command: x\n      interactiveMode: Always\n"),
                     TL_EINVAL);
    assert_err_contains(e, "interactiveMode: Always needs a terminal");
}

static void exec_old_api_version_is_refused(void **state)
{
    struct env *e = *state;
    assert_int_equal(parse_user(e, "    exec:\n      apiVersion: client.authentication.k8s.io/"
                                   "v1alpha1\n      command: x\n"),
                     TL_EINVAL);
    assert_err_contains(e,
                        "apiVersion: \"client.authentication.k8s.io/v1alpha1\" is not supported");
}

static void auth_provider_is_refused_with_advice(void **state)
{
    struct env *e = *state;
    assert_int_equal(parse_user(e, "    auth-provider:\n      name: gcp\n      config: {}\n"),
                     TL_EINVAL);
    assert_err_contains(e, "kubeconfig /etc/kc/config: users[0].user.auth-provider:");
    assert_err_contains(e, "\"gcp\" auth provider is not supported");
    assert_err_contains(e, "exec plugin");
}

static void basic_auth_is_refused(void **state)
{
    struct env *e = *state;
    assert_int_equal(parse_user(e, "    username: admin\n    password: secret\n"), TL_EINVAL);
    assert_err_contains(e, "users[0].user.username/password: basic authentication is not "
                           "supported");
    assert_null(strstr(e->err, "secret"));
}

static void impersonation_is_refused_not_ignored(void **state)
{
    struct env *e = *state;
    assert_int_equal(parse_user(e, "    token: t\n    as: system:admin\n"), TL_EINVAL);
    assert_err_contains(e, "users[0].user.as: impersonation is not supported");
}

static void unused_user_with_auth_provider_is_fine(void **state)
{
    struct env *e = *state;
    assert_int_equal(parse(e, "current-context: c\n"
                              "clusters: [{name: k, cluster: {server: 'https://k'}}]\n"
                              "users:\n"
                              "- {name: old, user: {auth-provider: {name: azure}}}\n"
                              "- {name: u, user: {token: t}}\n"
                              "contexts: [{name: c, context: {cluster: k, user: u}}]\n"),
                     TL_OK);
    assert_string_equal(e->cfg->token, "t");
}

static void bad_base64_names_the_field(void **state)
{
    struct env *e = *state;
    assert_int_equal(parse_user(e, "    client-certificate-data: 'not*base64'\n"
                                   "    client-key-data: a2V5\n"),
                     TL_EINVAL);
    assert_string_equal(e->err, "kubeconfig /etc/kc/config: "
                                "users[0].user.client-certificate-data: invalid base64");
}

static void wrong_types_name_the_field(void **state)
{
    struct env *e = *state;
    assert_int_equal(parse_user(e, "    token: 12345\n"), TL_EINVAL);
    assert_err_contains(e, "users[0].user.token: expected a string");
    tl_kube_config_destroy(e->cfg);
    e->cfg = NULL;

    assert_int_equal(parse(e, "clusters: {a: b}\n"), TL_EINVAL);
    assert_string_equal(e->err, "kubeconfig /etc/kc/config: clusters: expected a list");

    assert_int_equal(parse(e, "clusters:\n- name: k\n  cluster:\n"
                              "    insecure-skip-tls-verify: \"true\"\n"),
                     TL_EINVAL);
    assert_err_contains(e, "clusters[0].cluster.insecure-skip-tls-verify: expected true or false");

    assert_int_equal(parse(e, "- just\n- a list\n"), TL_EINVAL);
    assert_err_contains(e, "expected a mapping");

    assert_int_equal(parse(e, "kind: Pod\n"), TL_EINVAL);
    assert_err_contains(e, "kind: expected Config");
}

static void both_ways_of_giving_a_value_are_refused(void **state)
{
    struct env *e = *state;
    assert_int_equal(parse_user(e, "    client-certificate: a.crt\n"
                                   "    client-certificate-data: YQ==\n"
                                   "    client-key: a.key\n"),
                     TL_EINVAL);
    assert_err_contains(e, "client-certificate and client-certificate-data are both set");

    assert_int_equal(parse_user(e, "    client-certificate: a.crt\n"), TL_EINVAL);
    assert_err_contains(e, "a client certificate is set without its client-key");

    assert_int_equal(parse(e, "current-context: c\n"
                              "clusters: [{name: k, cluster: {server: 'https://k', "
                              "certificate-authority: ca.crt, insecure-skip-tls-verify: true}}]\n"
                              "contexts: [{name: c, context: {cluster: k}}]\n"),
                     TL_EINVAL);
    assert_err_contains(e, "insecure-skip-tls-verify is set together with a certificate "
                           "authority");
}

static void duplicate_names_in_one_file_are_refused(void **state)
{
    struct env *e = *state;
    assert_int_equal(parse(e, "clusters:\n- {name: k, cluster: {server: 'https://a'}}\n"
                              "- {name: k, cluster: {server: 'https://b'}}\n"),
                     TL_EINVAL);
    assert_err_contains(e, "clusters[1]: name: \"k\" is already used by clusters[0]");
}

static void context_references_must_exist(void **state)
{
    struct env *e = *state;
    assert_int_equal(parse(e, "current-context: c\n"
                              "clusters: [{name: k, cluster: {server: 'https://k'}}]\n"
                              "contexts: [{name: c, context: {cluster: k, user: ghost}}]\n"),
                     TL_ENOTFOUND);
    assert_err_contains(e, "contexts[0].context: user: \"ghost\" not found");

    assert_int_equal(parse(e, "current-context: c\n"
                              "contexts: [{name: c, context: {cluster: nope}}]\n"),
                     TL_ENOTFOUND);
    assert_err_contains(e, "contexts[0].context: cluster: \"nope\" not found");

    assert_int_equal(parse(e, "current-context: c\n"
                              "clusters: [{name: k, cluster: {server: 'https://k'}}]\n"
                              "contexts: [{name: c, context: {cluster: k, namespace: Bad_NS}}]\n"),
                     TL_EINVAL);
    assert_err_contains(e, "namespace: \"Bad_NS\" is not a valid namespace name");
}

static void context_without_user_is_anonymous(void **state)
{
    struct env *e = *state;
    assert_int_equal(parse(e, "current-context: c\n"
                              "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:8001/'}}]\n"
                              "contexts: [{name: c, context: {cluster: k}}]\n"),
                     TL_OK);
    assert_string_equal(e->cfg->server, "http://127.0.0.1:8001");
    assert_null(e->cfg->token);
    assert_null(e->cfg->client_cert_file);
}

static void server_must_be_a_url(void **state)
{
    struct env *e = *state;
    assert_int_equal(parse(e, "current-context: c\n"
                              "clusters: [{name: k, cluster: {server: 'k8s.local:6443'}}]\n"
                              "contexts: [{name: c, context: {cluster: k}}]\n"),
                     TL_EINVAL);
    assert_err_contains(e, "server: \"k8s.local:6443\" is not an https:// or http:// URL");
}

static void empty_file_has_no_context(void **state)
{
    struct env *e = *state;
    write_file(e->dir, "empty", "");
    char path[512];
    (void)snprintf(path, sizeof(path), "%s/empty", e->dir);
    assert_int_equal(load_file(e, path, NULL), TL_ENOTFOUND);
    assert_err_contains(e, "current-context is not set");
}

static void in_memory_without_source_keeps_paths_relative(void **state)
{
    struct env *e = *state;
    const char *text = "current-context: c\n"
                       "clusters: [{name: k, cluster: {server: 'https://k', "
                       "certificate-authority: ca.crt}}]\n"
                       "contexts: [{name: c, context: {cluster: k}}]\n";
    assert_int_equal(
        tl_kube_config_parse(text, strlen(text), NULL, NULL, &e->cfg, e->err, sizeof(e->err)),
        TL_OK);
    assert_string_equal(e->cfg->ca_file, "ca.crt");
    assert_string_equal(e->cfg->source, "<memory>");
}

/* ---- KUBECONFIG ---- */

static void kubeconfig_merges_first_file_wins(void **state)
{
    struct env *e = *state;
    setenv("KUBECONFIG", DATA "/merge-a.yaml:" DATA "/merge-b.yaml", 1);
    assert_int_equal(tl_kube_config_load(NULL, &e->cfg, e->err, sizeof(e->err)), TL_OK);
    /* a has an empty current-context, so b's counts; the cluster and user come from a. */
    assert_string_equal(e->cfg->context_name, "b-ctx");
    assert_string_equal(e->cfg->server, "https://a.example.com");
    assert_string_equal(e->cfg->token, "token-from-a");
    assert_string_equal(e->cfg->namespace, "from-b");
    assert_string_equal(e->cfg->source, DATA "/merge-b.yaml");
    tl_kube_config_destroy(e->cfg);
    e->cfg = NULL;

    /* a-ctx is defined in both; the first file's wins. */
    struct tl_kube_config_options opts = {.context = "a-ctx"};
    assert_int_equal(tl_kube_config_load(&opts, &e->cfg, e->err, sizeof(e->err)), TL_OK);
    assert_string_equal(e->cfg->namespace, "from-a");
    tl_kube_config_destroy(e->cfg);
    e->cfg = NULL;

    setenv("KUBECONFIG", DATA "/merge-b.yaml:" DATA "/merge-a.yaml", 1);
    assert_int_equal(tl_kube_config_load(NULL, &e->cfg, e->err, sizeof(e->err)), TL_OK);
    assert_string_equal(e->cfg->server, "https://b.example.com");
    assert_string_equal(e->cfg->token, "token-from-b");
}

static void kubeconfig_skips_missing_files(void **state)
{
    struct env *e = *state;
    setenv("KUBECONFIG", "/nonexistent/one::" DATA "/multi.yaml:/nonexistent/two", 1);
    assert_int_equal(tl_kube_config_load(NULL, &e->cfg, e->err, sizeof(e->err)), TL_OK);
    assert_string_equal(e->cfg->context_name, "dev");
}

static void kubeconfig_with_no_existing_file_fails(void **state)
{
    struct env *e = *state;
    setenv("KUBECONFIG", "/nonexistent/one:/nonexistent/two", 1);
    assert_int_equal(tl_kube_config_load(NULL, &e->cfg, e->err, sizeof(e->err)), TL_ENOTFOUND);
    assert_err_contains(e, "KUBECONFIG: none of its files exists");
}

static void kubeconfig_unknown_context_lists_the_files(void **state)
{
    struct env *e = *state;
    setenv("KUBECONFIG", DATA "/merge-a.yaml:" DATA "/merge-b.yaml", 1);
    struct tl_kube_config_options opts = {.context = "prod"};
    assert_int_equal(tl_kube_config_load(&opts, &e->cfg, e->err, sizeof(e->err)), TL_ENOTFOUND);
    assert_string_equal(e->err, "kubeconfig " DATA "/merge-a.yaml:" DATA
                                "/merge-b.yaml: context \"prod\" not found");
}

static void kubeconfig_broken_file_fails_the_load(void **state)
{
    struct env *e = *state;
    setenv("KUBECONFIG", DATA "/multi.yaml:" DATA "/broken.yaml", 1);
    assert_int_equal(tl_kube_config_load(NULL, &e->cfg, e->err, sizeof(e->err)), TL_EINVAL);
    assert_err_contains(e, "broken.yaml: line 4");
}

static void home_kube_config_is_the_last_resort(void **state)
{
    struct env *e = *state;
    assert_int_equal(tl_kube_config_load(NULL, &e->cfg, e->err, sizeof(e->err)), TL_ENOTFOUND);
    assert_err_contains(e, "no Kubernetes configuration");

    char dir[300];
    (void)snprintf(dir, sizeof(dir), "%s/.kube", e->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    write_file(dir, "config",
               "current-context: h\nclusters: [{name: k, cluster: {server: 'https://home'}}]\n"
               "contexts: [{name: h, context: {cluster: k}}]\n");
    assert_int_equal(tl_kube_config_load(NULL, &e->cfg, e->err, sizeof(e->err)), TL_OK);
    assert_string_equal(e->cfg->server, "https://home");
}

/* ---- in-cluster ---- */

static void make_service_account(struct env *e, bool with_ca)
{
    write_file(e->dir, "token", "sa-token\n");
    write_file(e->dir, "namespace", "tailor-system\n");
    if (with_ca)
        write_file(e->dir, "ca.crt", "-----BEGIN CERTIFICATE-----\n");
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
}

static void in_cluster_reads_the_service_account(void **state)
{
    struct env *e = *state;
    make_service_account(e, true);
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    struct tl_kube_config_options opts = {.service_account_dir = e->dir};
    assert_int_equal(tl_kube_config_load(&opts, &e->cfg, e->err, sizeof(e->err)), TL_OK);
    char path[300];
    assert_string_equal(e->cfg->source, "in-cluster");
    assert_null(e->cfg->context_name);
    assert_string_equal(e->cfg->server, "https://10.96.0.1:443");
    assert_string_equal(e->cfg->token, "sa-token");
    (void)snprintf(path, sizeof(path), "%s/token", e->dir);
    assert_string_equal(e->cfg->token_file, path);
    (void)snprintf(path, sizeof(path), "%s/ca.crt", e->dir);
    assert_string_equal(e->cfg->ca_file, path);
    assert_string_equal(e->cfg->namespace, "tailor-system");
}

static void in_cluster_brackets_ipv6_and_reads_env_dir(void **state)
{
    struct env *e = *state;
    make_service_account(e, false);
    setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
    setenv("TAILOR_SA_DIR", e->dir, 1);
    assert_int_equal(tl_kube_config_load(NULL, &e->cfg, e->err, sizeof(e->err)), TL_OK);
    assert_string_equal(e->cfg->server, "https://[fd00:10:96::1]:443");
    /* Without ca.crt client-go falls back to the system roots; so do we. */
    assert_null(e->cfg->ca_file);
}

static void in_cluster_without_token_falls_through(void **state)
{
    struct env *e = *state;
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    struct tl_kube_config_options opts = {.service_account_dir = e->dir};
    assert_int_equal(tl_kube_config_load(&opts, &e->cfg, e->err, sizeof(e->err)), TL_ENOTFOUND);
    assert_err_contains(e, "in-cluster: ");
    assert_err_contains(e, "/token: no such file");
}

static void kubeconfig_wins_unless_in_cluster_first(void **state)
{
    struct env *e = *state;
    make_service_account(e, true);
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBECONFIG", DATA "/multi.yaml", 1);
    struct tl_kube_config_options opts = {.service_account_dir = e->dir};
    assert_int_equal(tl_kube_config_load(&opts, &e->cfg, e->err, sizeof(e->err)), TL_OK);
    assert_string_equal(e->cfg->context_name, "dev");
    tl_kube_config_destroy(e->cfg);
    e->cfg = NULL;

    opts.in_cluster_first = true;
    assert_int_equal(tl_kube_config_load(&opts, &e->cfg, e->err, sizeof(e->err)), TL_OK);
    assert_string_equal(e->cfg->source, "in-cluster");
}

static void in_cluster_bad_port_is_an_error(void **state)
{
    struct env *e = *state;
    make_service_account(e, true);
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "https", 1);
    struct tl_kube_config_options opts = {.service_account_dir = e->dir};
    assert_int_equal(tl_kube_config_load(&opts, &e->cfg, e->err, sizeof(e->err)), TL_ENOTFOUND);
    assert_err_contains(e, "KUBERNETES_SERVICE_PORT=\"https\" is not a port number");
}

/* ---- the file reader ---- */

static void read_file_refuses_past_the_cap(void **state)
{
    struct env *e = *state;
    write_file(e->dir, "big", "0123456789");
    char path[300];
    (void)snprintf(path, sizeof(path), "%s/big", e->dir);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(tl_kube_config_read_file(path, 9, &text, &len), TL_ETOOBIG);
    assert_null(text);
    assert_int_equal(tl_kube_config_read_file(path, 10, &text, &len), TL_OK);
    assert_int_equal(len, 10);
    assert_string_equal(text, "0123456789");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(current_context_is_used),
        T(context_flag_picks_another_with_relative_paths),
        T(token_file_is_resolved),
        T(unknown_context_names_it_and_the_file),
        T(json_form_with_tabs_parses),
        T(broken_yaml_gives_line_and_column),
        T(missing_server_names_the_field),
        T(explicit_kubeconfig_must_exist),
        T(directory_is_not_a_kubeconfig),
        T(exec_user_is_read_whole),
        T(exec_command_without_slash_stays_a_name),
        T(exec_needs_interactive_mode_in_v1),
        T(exec_always_interactive_is_refused),
        T(exec_old_api_version_is_refused),
        T(auth_provider_is_refused_with_advice),
        T(basic_auth_is_refused),
        T(impersonation_is_refused_not_ignored),
        T(unused_user_with_auth_provider_is_fine),
        T(bad_base64_names_the_field),
        T(wrong_types_name_the_field),
        T(both_ways_of_giving_a_value_are_refused),
        T(duplicate_names_in_one_file_are_refused),
        T(context_references_must_exist),
        T(context_without_user_is_anonymous),
        T(server_must_be_a_url),
        T(empty_file_has_no_context),
        T(in_memory_without_source_keeps_paths_relative),
        T(kubeconfig_merges_first_file_wins),
        T(kubeconfig_skips_missing_files),
        T(kubeconfig_with_no_existing_file_fails),
        T(kubeconfig_unknown_context_lists_the_files),
        T(kubeconfig_broken_file_fails_the_load),
        T(home_kube_config_is_the_last_resort),
        T(in_cluster_reads_the_service_account),
        T(in_cluster_brackets_ipv6_and_reads_env_dir),
        T(in_cluster_without_token_falls_through),
        T(kubeconfig_wins_unless_in_cluster_first),
        T(in_cluster_bad_port_is_an_error),
        T(read_file_refuses_past_the_cap),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
