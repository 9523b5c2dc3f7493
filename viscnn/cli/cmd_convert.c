// cmd_convert.c: viscnn convert IN.pth --arch NAME -o OUT.safetensors — a
// plain PyTorch state dict (zip or legacy torch.save) plus a built-in
// architecture (viscnn/arch.h) becomes a viscnn model file.
#include <stdio.h>
#include "cli.h"

int cmd_convert(int argc, char **argv, vc_error *err) {
    cli_args a;
    int rc = cli_parse(&a, "convert", argc, argv, NULL, err);
    if (rc) return rc;
    const char *arch = cli_opt(&a, "arch"), *out = cli_opt(&a, "o");
    char names[512];
    vc_arch_names(names, sizeof names);
    if (a.n_pos != 1) return cli_fail(err, VC_EINPUT, "convert: expected one IN.pth argument, got %d", a.n_pos);
    if (!arch) return cli_fail(err, VC_EINPUT, "convert: missing --arch NAME (built in: %s)", names);
    if (!out) return cli_fail(err, VC_EINPUT, "convert: missing -o OUT.safetensors");
    if (cli_check_ext("convert", "-o", out, (const char *const[]){".safetensors", NULL}, err) < 0) return VC_EINPUT;
    if ((rc = cli_check_unused(&a, err))) return rc;
    vc_pth_report info;
    double t0 = cli_now();
    if ((rc = vc_pth_convert(a.pos[0], arch, out, &info, err))) return rc;
    if (info.n_ignored)
        fprintf(stderr, "viscnn convert: note: ignored %d tensor%s of %s that %s does not use, e.g. '%s'\n", info.n_ignored,
                info.n_ignored == 1 ? "" : "s", a.pos[0], arch, info.ignored_example);
    char what[1024];
    snprintf(what, sizeof what, "--arch %s, %d tensors (%zu values) from %s (%s format%s%s%s)", arch, info.n_written,
             info.n_values, a.pos[0], info.legacy ? "legacy" : "zip", info.nested[0] ? ", nested under '" : "",
             info.nested, info.nested[0] ? "'" : "");
    cli_wrote(out, what, t0);
    if (info.stripped_module) fprintf(stderr, "viscnn convert: note: removed the 'module.' prefix of every key\n");
    return VC_OK;
}
