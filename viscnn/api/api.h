// api.h: the structs behind viscnn.h's opaque handles (shared by api/*.c).
#pragma once
#include "../circuit.h"

struct vc_session {
    const vc_model *m;
    vc_run *r;                // the engine's run, rebuilt when the batch size changes; NULL before a forward
    int n;                    // images of the last forward (0: none yet)
    int backward;             // a backward has run since that forward
    int infer;                // the last forward was vc_session_infer: only its node is kept
    const vc_subnet *circuit; // masks applied to every run (NULL: none)
};

struct vc_scoreset {
    const vc_model *m;
    vc_metric metric;
    vc_target target;
    vc_importance im;         // the accumulator until finished
    int finished;
    vc_scores scores;         // the means, once finished
};

struct vc_subnet {
    const vc_model *m;
    vc_target target;
    vc_scores layout;         // the scores it was extracted from (their layout names the layers)
    vc_circuit c;
    struct circuit_run *run;  // what vc_circuit_find made it from (NULL otherwise)
};
void circuit_run_free(struct circuit_run *r);

#include "../../train/train.h"
struct vc_labelled { train_set s; };   // a labelled set and its storage

// Checks that an argument is not NULL: VC_EINPUT naming it and the function.
#define API_NEED(p, err) \
    do { if (!(p)) return vc_fail((err), VC_EINPUT, "%s: argument %s is NULL", __func__, #p); } while (0)
