#!/usr/bin/env bash
# Trains the models shipped in models/ with vidstyle's own `vidstyle train` (the recipe of their cards).
# Usage: scripts/train_shipped_models.sh SHARED_DIR OUT_DIR [--resume]
# SHARED_DIR holds data/content, data/styles and weights/vgg19_imagenet_conv1_1-conv3_4.safetensors.
set -euo pipefail
shared=${1:?SHARED_DIR}; out=${2:?OUT_DIR}; shift 2
common=(--content "$shared/data/content" --vgg-weights "$shared/weights/vgg19_imagenet_conv1_1-conv3_4.safetensors"
        --size tiny --image-size 256 --batch-size 2 --iterations 1000 --checkpoint-every 50
        --style-weight 10 --temporal-weight 10 --seed 0 --quiet "$@")
vidstyle train --style "$shared/data/styles/vangogh_starry_night.jpg" -o "$out/starry_tiny" "${common[@]}"
vidstyle train --style "$shared/data/styles/hokusai_great_wave.jpg" -o "$out/wave_tiny" "${common[@]}"
