#!/usr/bin/env bash
# The one prepared script for a session that is lent a GPU (15 minutes of device time in all, start included):
# train what the 2-core CPU cannot, all at once, then measure. Run from the repository root:
#   bash scripts/gpu_session.sh SHARED_DIR OUT_DIR [TRAIN_MINUTES]
# SHARED_DIR holds data/content, data/styles and weights/vgg19_imagenet_conv1_1-conv3_4.safetensors.
#
# How it was run on the lent H100 (2026-12-05; the machine has no PyAV and no kornia, and nothing can be
# installed; training imports neither, and devcarry/stub/av stands in for PyAV in the speed benchmark; the
# Python with torch is /opt/torch/.venv/bin/python, which a symlink elsewhere does not reach):
#   mkdir -p devcarry/shared/{data,weights}; cp -r ../shared/data/{content,styles} devcarry/shared/data/
#   cp ../shared/weights/vgg19_imagenet_conv1_1-conv3_4.safetensors devcarry/shared/weights/   (29 MB; carry devcarry)
#   export PATH=/opt/torch/.venv/bin:$PATH PYTHONPATH=devcarry/stub:. ; bash scripts/gpu_session.sh devcarry/shared /tmp/g 5
#
# 1. Nine trainings side by side on the one GPU (each a `vidstyle train` process with 2 CPU threads), every one
#    stopped by --time-budget and saved with its card:
#      starry_tiny_s3 / starry_tiny_s1   the live-capable default candidates (style weight 3e-3 / 1e-3)
#      starry_small                      the next size up
#      starry_full / wave_full           Johnson-size models for the full-size target
#      painters_tiny / painters_small    one multi-style net for the 12 paintings (conditional instance norm)
#      decoder_relu21 then decoder_relu11  the arbitrary back end's coarse-to-fine cascade
#    All use the recipe of the CPU ablation (BENCHMARKS "Style fidelity"): the standard Gram form (sum), the
#    painting at 512 px, total variation 10, temporal consistency 10, batch 4 at 256 px.
#    Measured 2026-12-05, 5 minutes: 3339 / 2220 / 1538 iterations for tiny / small / full (about 90 / 135 /
#    195 ms per iteration each with nine sharing the GPU), 2549 / 2016 for the 12-style nets (~200 per style).
#    Results (BENCHMARKS "Style fidelity"): every size, full included, paints the same diagonal hatch at this
#    budget, so the hatch comes from the loss and the budget, not the tiny layout; style weight 1e-3 beat 3e-3 on
#    style *and* texture; 200 iterations per style leave a 12-style net with no style. Next time: fewer, longer
#    runs (TRAIN_MINUTES=9 with JOBS="tiny_s1 tiny_s03 painters_tiny6"), see NEXT below.
# 2. The arbitrary back end's speed at 640x360 and 1920x1080, batch 1 and 8 (issue 15's GPU target).
# Afterwards, on the CPU: bench_quality.py on held-out photos and a look at the contact sheets decide what ships.
# DEVICE=cpu TRAIN_MINUTES=0.05 runs the same commands as a smoke test.
set -uo pipefail
shared=${1:?SHARED_DIR}; out=${2:?OUT_DIR}; minutes=${3:-5}
dev=${DEVICE:-cuda}
mkdir -p "$out/models" "$out/logs"
vgg="$shared/weights/vgg19_imagenet_conv1_1-conv3_4.safetensors"
styles="$shared/data/styles"
run=(python -m vidstyle train)
common=(--content "$shared/data/content" --vgg-weights "$vgg" --device "$dev" --threads 2 --quiet --seed 0
        --image-size 256 --batch-size 4 --iterations 1000000 --time-budget "$minutes" --checkpoint-every 2000)
recipe=(--style-reduction sum --style-size 512 --tv-weight 10 --temporal-weight 10)
m="$out/models"; l="$out/logs"
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true

jobs=${JOBS:-"tiny_s3 tiny_s1 small full wave_full painters_tiny painters_small decoders"}
want() { [[ " $jobs " == *" $1 "* ]]; }
starry="$styles/vangogh_starry_night.jpg"
single() {  # JOB SIZE STYLE_WEIGHT LR [PAINTING] [NAME]
    local name=${6:-starry_$2}
    "${run[@]}" --style "${5:-$starry}" -o "$m/$1" --name "$name" --size "$2" --lr "$4" --style-weight "$3" \
        "${recipe[@]}" "${common[@]}" > "$l/$1.log" 2>&1 &
}
want tiny_s3 && single starry_tiny_s3 tiny 3e-3 2e-3 "" starry_tiny
want tiny_s1 && single starry_tiny_s1 tiny 1e-3 2e-3 "" starry_tiny
want tiny_s03 && single starry_tiny_s03 tiny 3e-4 2e-3 "" starry_tiny   # NEXT: the trend of the 12-05 run
want small && single starry_small small 3e-3 2e-3
want full && single starry_full full 3e-3 1e-3
want wave_full && single wave_full full 3e-3 1e-3 "$styles/hokusai_great_wave.jpg" wave_full

names=starry,rhone,bedroom,scream,wave,kandinsky,turner,charing_cross,san_giorgio,degas,gauguin,lautrec
files=(vangogh_starry_night.jpg vangogh_starry_night_over_the_rhone.png vangogh_bedroom_in_arles.jpg
       munch_the_scream.jpg hokusai_great_wave.jpg kandinsky_composition_vii.jpg turner_shipwreck_of_the_minotaur.jpg
       monet_charing_cross_bridge.jpg monet_san_giorgio_maggiore_at_dusk.jpg degas_dance_foyer_at_the_opera.jpg
       gauguin_te_fare.jpg toulouse_lautrec_in_bed.png)
style_args=(); for f in "${files[@]}"; do style_args+=(--style "$styles/$f"); done
for size in tiny small; do
    want painters_$size || continue
    "${run[@]}" --multi-style "${style_args[@]}" --style-names "$names" -o "$m/painters_$size" --name "painters_$size" \
        --size $size --lr 2e-3 --style-weight 3e-3 "${recipe[@]}" "${common[@]}" > "$l/painters_$size.log" 2>&1 &
done
if want painters_tiny6; then  # NEXT: six styles, so each gets twice the iterations of the 12-style net
    six=(); for f in "${files[@]:0:7}"; do [[ $f == vangogh_bedroom_in_arles.jpg ]] || six+=(--style "$styles/$f"); done
    "${run[@]}" --multi-style "${six[@]}" --style-names starry,rhone,scream,wave,kandinsky,turner -o "$m/painters6_tiny" \
        --name painters6_tiny --size tiny --lr 2e-3 --style-weight 1e-3 "${recipe[@]}" "${common[@]}" \
        > "$l/painters6_tiny.log" 2>&1 &
fi

half=$(python -c "print($minutes / 2)")
want decoders && (
  for layer in relu2_1 relu1_1; do
      "${run[@]}" --kind decoder --layer $layer -o "$m/decoder_${layer/_/}" --name "decoder_${layer/_/}" --lr 5e-4 \
          "${common[@]}" --batch-size 8 --time-budget "$half" > "$l/decoder_${layer/_/}.log" 2>&1
  done
) &
wait
echo "trainings done after $(( $(date +%s) - t0 )) s"
for f in "$l"/*.log; do echo "== $f"; tail -n 3 "$f"; done

timeout "${BENCH_TIMEOUT:-100}" python benchmarks/bench_arbitrary.py --speed --device "$dev" --speed-sizes 640x360,1920x1080 --batches 1,8 \
    --speed-seconds "${SPEED_SECONDS:-2}" --decoder models/decoder_relu31.safetensors --vgg-weights "$vgg" \
    --styles-dir "$styles" --json "$out/bench_arbitrary_speed.json" > "$l/bench_arbitrary_speed.txt" 2>&1
echo "bench rc $? after $(( $(date +%s) - t0 )) s"; tail -n 30 "$l/bench_arbitrary_speed.txt"
rm -f "$m"/*.ckpt.safetensors
ls -la "$m"
