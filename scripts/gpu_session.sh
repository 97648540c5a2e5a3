#!/usr/bin/env bash
# The one prepared script for a session that is lent a GPU (15 minutes of device time in all, start included):
# train what the 2-core CPU cannot, all at once, then measure. Run from the repository root:
#   bash scripts/gpu_session.sh SHARED_DIR OUT_DIR [TRAIN_MINUTES]
# SHARED_DIR holds data/content, data/styles and weights/vgg19_imagenet_conv1_1-conv3_4.safetensors.
#
# 1. Eight trainings side by side on the one GPU (each a `vidstyle train` process with 2 CPU threads; a
#    training of these small nets leaves most of an H100 idle, so eight share it at little cost each), every
#    one stopped by --time-budget and saved with its card:
#      starry_tiny_s3 / starry_tiny_s1   the live-capable default candidates (style weight 3e-3 / 1e-3)
#      starry_small                      the next size up, if the tiny layout keeps its hatch
#      starry_full / wave_full           Johnson-size models for the full-size target
#      painters_tiny / painters_small    one multi-style net for the 12 paintings (conditional instance norm)
#      decoder_relu21 then decoder_relu11  the arbitrary back end's coarse-to-fine cascade
#    All use the recipe the ablation chose (BENCHMARKS "Style fidelity"): the standard Gram form (sum), the
#    painting at 512 px, total variation 10, temporal consistency 10, batch 4 at 256 px.
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

starry="$styles/vangogh_starry_night.jpg"
"${run[@]}" --style "$starry" -o "$m/starry_tiny_s3" --name starry_tiny --size tiny --lr 2e-3 --style-weight 3e-3 \
    "${recipe[@]}" "${common[@]}" > "$l/starry_tiny_s3.log" 2>&1 &
"${run[@]}" --style "$starry" -o "$m/starry_tiny_s1" --name starry_tiny --size tiny --lr 2e-3 --style-weight 1e-3 \
    "${recipe[@]}" "${common[@]}" > "$l/starry_tiny_s1.log" 2>&1 &
"${run[@]}" --style "$starry" -o "$m/starry_small" --name starry_small --size small --lr 2e-3 --style-weight 3e-3 \
    "${recipe[@]}" "${common[@]}" > "$l/starry_small.log" 2>&1 &
"${run[@]}" --style "$starry" -o "$m/starry_full" --name starry_full --size full --lr 1e-3 --style-weight 3e-3 \
    "${recipe[@]}" "${common[@]}" > "$l/starry_full.log" 2>&1 &
"${run[@]}" --style "$styles/hokusai_great_wave.jpg" -o "$m/wave_full" --name wave_full --size full --lr 1e-3 \
    --style-weight 3e-3 "${recipe[@]}" "${common[@]}" > "$l/wave_full.log" 2>&1 &

names=starry,rhone,bedroom,scream,wave,kandinsky,turner,charing_cross,san_giorgio,degas,gauguin,lautrec
files=(vangogh_starry_night.jpg vangogh_starry_night_over_the_rhone.png vangogh_bedroom_in_arles.jpg
       munch_the_scream.jpg hokusai_great_wave.jpg kandinsky_composition_vii.jpg turner_shipwreck_of_the_minotaur.jpg
       monet_charing_cross_bridge.jpg monet_san_giorgio_maggiore_at_dusk.jpg degas_dance_foyer_at_the_opera.jpg
       gauguin_te_fare.jpg toulouse_lautrec_in_bed.png)
style_args=(); for f in "${files[@]}"; do style_args+=(--style "$styles/$f"); done
for size in tiny small; do
    "${run[@]}" --multi-style "${style_args[@]}" --style-names "$names" -o "$m/painters_$size" --name "painters_$size" \
        --size $size --lr 2e-3 --style-weight 3e-3 "${recipe[@]}" "${common[@]}" > "$l/painters_$size.log" 2>&1 &
done

half=$(python -c "print($minutes / 2)")
(
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
