/* main: the `tailor` program's entry point; parses the subcommand and hands over to it. */
#include <stdio.h>
#include <string.h>

#include "export.h"
#include "log.h"
#include "operator.h"
#include "options.h"
#include "scan.h"

#define EXIT_USAGE 2

static const char usage_text[] =
    "Usage: tailor [--help] <command> [flags]\n"
    "\n"
    "Right-sizes Kubernetes workloads and Karpenter NodePools from their usage history.\n"
    "\n"
    "Commands:\n"
    "  run       run the operator (watches policies and workloads, writes Recommendations)\n"
    "  scan      one-shot report against the current kubeconfig (no CRDs needed)\n"
    "  version   print the version and exit\n"
    "\n"
    "Run 'tailor <command> --help' for the flags of a command.\n";

static int cmd_version(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("Usage: tailor version\n\nPrints the version of tailor.\n");
            return 0;
        }
        fprintf(stderr, "tailor version: unknown argument '%s'\n", argv[i]);
        return EXIT_USAGE;
    }
    printf("tailor %s\n", TL_VERSION);
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    struct tl_run_options opts;
    char err[256];
    if (tl_run_options_parse(argc - 1, argv + 1, &opts, err, sizeof(err)) != TL_OK) {
        fprintf(stderr, "tailor run: %s\n\n", err);
        tl_run_options_usage(stderr);
        return EXIT_USAGE;
    }
    if (opts.help) {
        tl_run_options_usage(stdout);
        return 0;
    }
    tl_log_configure(opts.log_level, opts.log_format, NULL);
    return tl_operator_run(&opts);
}

static int cmd_scan(int argc, char **argv)
{
    struct tl_scan_options opts;
    char err[512];
    if (tl_scan_options_parse(argc - 1, argv + 1, &opts, err, sizeof(err)) != TL_OK) {
        fprintf(stderr, "tailor scan: %s\nRun 'tailor scan --help' for the flags.\n", err);
        return EXIT_USAGE;
    }
    int code = 0;
    if (opts.help)
        tl_scan_usage(stdout);
    else
        code = tl_scan_run(&opts);
    tl_scan_options_free(&opts);
    return code;
}

static int cmd_export(int argc, char **argv)
{
    struct tl_export_options opts;
    char err[512];
    if (tl_export_options_parse(argc - 1, argv + 1, &opts, err, sizeof(err)) != TL_OK) {
        fprintf(stderr, "tailor export: %s\nRun 'tailor export --help' for the flags.\n", err);
        return EXIT_USAGE;
    }
    int code = 0;
    if (opts.help)
        tl_export_usage(stdout);
    else
        code = tl_export_run(&opts);
    tl_export_options_free(&opts);
    return code;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    const char *command = argv[1];
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 ||
        strcmp(command, "help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (strcmp(command, "version") == 0 || strcmp(command, "--version") == 0)
        return cmd_version(argc - 1, argv + 1);
    if (strcmp(command, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(command, "scan") == 0)
        return cmd_scan(argc - 1, argv + 1);
    if (strcmp(command, "export") == 0)
        return cmd_export(argc - 1, argv + 1);
    if (command[0] == '-')
        fprintf(stderr, "tailor: unknown flag '%s'\n\n", command);
    else
        fprintf(stderr, "tailor: unknown command '%s'\n\n", command);
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}
