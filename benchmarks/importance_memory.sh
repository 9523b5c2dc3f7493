#!/usr/bin/env bash
# importance_memory.sh: peak RSS of computing every node and edge score of
# vgg16 (actxgrad, loss) on 8 images at 224x224, against a plain
# forward+backward (with parameter gradients) of the same batch. Issue target:
# ratio <= 1.5. Each mode runs in its own process; the model file (528 MB of
# weights) is part of both.
set -eu
cd "$(dirname "$0")/.."
make -s bin/viscnn build/bench/bench_run
D=build/bench
mkdir -p $D
[ -f $D/vgg16.safetensors ] || /usr/bin/python3 tools/torch2viscnn.py --torchvision vgg16 --seed 0 -o $D/vgg16.safetensors
IMG=$(/usr/bin/python3 -c 'import skimage, os; print(os.path.join(os.path.dirname(skimage.__file__), "data"))')
bin/viscnn predict $D/vgg16.safetensors $IMG/astronaut.png $IMG/chelsea.png $IMG/coffee.png $IMG/rocket.jpg \
    $IMG/motorcycle_left.png $IMG/hubble_deep_field.jpg $IMG/ihc.png $IMG/retina.jpg --save-input $D/x8.npy > /dev/null
read -r _ tb _ rb < <(build/bench/bench_run $D/vgg16.safetensors $D/x8.npy fwdbwd 1)
read -r _ ti _ ri < <(build/bench/bench_run $D/vgg16.safetensors $D/x8.npy importance 1)
awk -v tb="$tb" -v rb="$rb" -v ti="$ti" -v ri="$ri" 'BEGIN {
    printf "vgg16, batch 8, 224x224\n"
    printf "  forward+backward (param grads): %7.2f s  peak RSS %7.0f MiB\n", tb, rb / 1024
    printf "  all node+edge actxgrad scores : %7.2f s  peak RSS %7.0f MiB\n", ti, ri / 1024
    r = ri / rb
    printf "  peak RSS ratio %.2f (target <= 1.5): %s\n", r, r <= 1.5 ? "met" : "MISSED"
    exit r <= 1.5 ? 0 : 1 }'
