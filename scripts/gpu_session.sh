#!/usr/bin/env bash
# The one prepared script for a session that is lent a GPU (15 minutes of device time in all): train what the
# 2-core CPU cannot, then measure. Every run checkpoints; rerun with RESUME=--resume after an interruption.
# Usage (on the device machine, from the repository root, with ../shared beside it):
#   bash scripts/gpu_session.sh ../shared "$OUT"
# Writes the models (+ cards) and logs under OUT; copy the models you keep into models/ and update the sha256
# in vidstyle.nets.registry.ShippedWeights (tests/nets/test_registry.py checks them).
#
# Budget (H200, measured 2026-11: ~14-15 ms per tiny/small iteration at batch 4, 256 px):
#   1. starry_tiny, standard Gram form (BENCHMARKS "Style fidelity" ablation)  6000 it   ~2 min
#   2. painters_tiny, 12 paintings, multi-style + identity slot                 13000 it  ~4 min (1000 per style)
#   3. decoder_relu31 for the arbitrary back end, 256 px crops                  6000 it   ~2 min
#   4. benchmarks/bench_gpu.py                                                              ~2 min
#   5. arbitrary back end: AdaIN (and WCT) fps at 640x360 and 1920x1080, batch 1 and 8,
#      float32 and bfloat16+channels-last, against the conv2d peak (bench_arbitrary.py --speed)  ~1 min
#   6. decoders for relu2_1 and relu1_1 (3000 it each, 256 px) and the quality of the coarse-to-fine WCT cascade
#      (Li et al. 2017) against single-level WCT/AdaIN on the 6-painting protocol (bench_arbitrary.py --cascade)  ~3 min
# Steps can be picked: STEPS="5" bash scripts/gpu_session.sh ../shared "$OUT" (default: all).
set -euo pipefail
shared=${1:?SHARED_DIR}; out=${2:?OUT_DIR}; mkdir -p "$out"
vgg="$shared/weights/vgg19_imagenet_conv1_1-conv3_4.safetensors"
styles="$shared/data/styles"
common=(--content "$shared/data/content" --vgg-weights "$vgg" --device cuda --checkpoint-every 500 --quiet ${RESUME:-})
pip install -q -e . >/dev/null 2>&1 || true
steps=${STEPS:-5 1 2 3 6 4}
want() { [[ " $steps " == *" $1 "* ]]; }

if want 5; then  # first: the cheapest, and the one the GPU target needs
    python benchmarks/bench_arbitrary.py --speed --device cuda --speed-sizes 640x360,1920x1080 --batches 1,8 \
        --speed-seconds 2 --decoder models/decoder_relu31.safetensors --vgg-weights "$vgg" \
        --styles-dir "$styles" --json "$out/bench_arbitrary_speed.json" > "$out/bench_arbitrary_speed.txt" 2>&1 || true
fi
if want 1; then
vidstyle train --style "$styles/vangogh_starry_night.jpg" -o "$out/starry_tiny" --name starry_tiny --size tiny \
    --iterations 6000 --batch-size 4 --image-size 256 --lr 2e-3 --style-reduction sum --style-weight 3e-3 \
    --style-size 512 --tv-weight 10 --temporal-weight 10 --seed 0 "${common[@]}" > "$out/starry_tiny.log" 2>&1
fi

if want 2; then
names=starry,rhone,bedroom,scream,wave,kandinsky,turner,charing_cross,san_giorgio,degas,gauguin,lautrec
files=(vangogh_starry_night.jpg vangogh_starry_night_over_the_rhone.png vangogh_bedroom_in_arles.jpg
       munch_the_scream.jpg hokusai_great_wave.jpg kandinsky_composition_vii.jpg turner_shipwreck_of_the_minotaur.jpg
       monet_charing_cross_bridge.jpg monet_san_giorgio_maggiore_at_dusk.jpg degas_dance_foyer_at_the_opera.jpg
       gauguin_te_fare.jpg toulouse_lautrec_in_bed.png)
style_args=(); for f in "${files[@]}"; do style_args+=(--style "$styles/$f"); done
vidstyle train --multi-style "${style_args[@]}" --style-names "$names" -o "$out/painters_tiny" --name painters_tiny \
    --size tiny --init "$out/starry_tiny.safetensors" --iterations 13000 --batch-size 4 --image-size 256 --lr 2e-3 \
    --style-reduction sum --style-weight 3e-3 --style-size 512 --tv-weight 10 --temporal-weight 10 --seed 0 \
    "${common[@]}" > "$out/painters_tiny.log" 2>&1
fi

want 3 && vidstyle train --kind decoder --layer relu3_1 -o "$out/decoder_relu31" --name decoder_relu31 --iterations 6000 \
    --batch-size 8 --image-size 256 --lr 5e-4 --seed 0 "${common[@]}" > "$out/decoder_relu31.log" 2>&1

if want 6; then
    for layer in relu2_1 relu1_1; do
        vidstyle train --kind decoder --layer $layer -o "$out/decoder_${layer/_/}" --name "decoder_${layer/_/}" \
            --iterations 3000 --batch-size 8 --image-size 256 --lr 5e-4 --seed 0 "${common[@]}" \
            > "$out/decoder_${layer/_/}.log" 2>&1
    done
    dec31="$out/decoder_relu31.safetensors"; [[ -f "$dec31" ]] || dec31=models/decoder_relu31.safetensors
    python benchmarks/bench_arbitrary.py --device cuda --decoder "$dec31" --vgg-weights "$vgg" \
        --styles-dir "$styles" --methods adain,wct \
        --cascade "$out/decoder_relu21.safetensors,$out/decoder_relu11.safetensors" \
        --json "$out/bench_cascade.json" --sheet "$out/cascade_sheet.png" > "$out/bench_cascade.txt" 2>&1 || true
fi

want 4 && { python benchmarks/bench_gpu.py --out "$out/bench_gpu.json" > "$out/bench_gpu.txt" 2>&1 || true; }
ls -la "$out"
