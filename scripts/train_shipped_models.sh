#!/usr/bin/env bash
# Trains the models shipped in models/ with vidstyle's own `vidstyle train` (the recipe of their cards).
# Usage: scripts/train_shipped_models.sh SHARED_DIR OUT_DIR [extra vidstyle-train options, e.g. --resume]
# SHARED_DIR holds data/content, data/styles and weights/vgg19_imagenet_conv1_1-conv3_4.safetensors.
# DEVICE=cuda runs the three trainings side by side on one GPU (about 2 min on an H200);
# on a 2-core CPU each takes hours (2.4 s/iteration): lower --iterations or run it in the background.
set -euo pipefail
shared=${1:?SHARED_DIR}; out=${2:?OUT_DIR}; shift 2
device=${DEVICE:-cpu}
styles="$shared/data/styles"
common=(--content "$shared/data/content" --vgg-weights "$shared/weights/vgg19_imagenet_conv1_1-conv3_4.safetensors"
        --size tiny --image-size 256 --batch-size 4 --iterations ${ITERATIONS:-3000} --checkpoint-every 250
        --style-weight 10 --seed 0 --quiet --device "$device" "$@")
vidstyle train --style "$styles/vangogh_starry_night.jpg" -o "$out/starry_tiny" --temporal-weight 200 "${common[@]}" &
vidstyle train --style "$styles/hokusai_great_wave.jpg" -o "$out/wave_tiny" --temporal-weight 200 "${common[@]}" &
# the same recipe without the temporal loss: the baseline the cards compare against
vidstyle train --style "$styles/vangogh_starry_night.jpg" -o "$out/starry_tiny_notemporal" --temporal-weight 0 "${common[@]}" &
wait
