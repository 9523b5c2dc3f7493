// device.c: --device cpu|cuda, taken out of a command's arguments before the
// command parses them, for the commands that compute (the run of every
// vc_run_new in the command then lives on that device).
#include <string.h>
#include "cli.h"

static const char *const computing[] = {"predict", "forward", "importance", "edges", "circuit", "project",
                                        "serve", "eval", NULL};

int cli_take_device(const char *cmd, int *argc, char **argv, vc_error *err) {
    int computes = 0;
    for (int i = 0; computing[i]; i++) computes |= !strcmp(cmd, computing[i]);
    int out = 0;
    const char *dev = NULL;
    for (int i = 0; i < *argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--device") || !strncmp(a, "--device=", 9)) {
            if (!strcmp(cmd, "train")) return cli_fail(err, VC_EINPUT, "train: --device: training runs on the CPU only");
            if (!computes) return cli_fail(err, VC_EINPUT, "%s: --device: this command computes nothing on a device", cmd);
            if (a[8] == '=') dev = a + 9;
            else if (i + 1 < *argc) dev = argv[++i];
            else return cli_fail(err, VC_EINPUT, "%s: --device needs a value (cpu or cuda)", cmd);
            continue;
        }
        argv[out++] = argv[i];
    }
    *argc = out;
    if (!dev) return VC_OK;
    return vc_device_select(dev, err);
}
