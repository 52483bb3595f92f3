#!/bin/bash
# All benchmarks on a GPU machine: device, XLA speed-up per family, examples/s, overhead, pipeline.
#   bash benchmarks/gpu.sh > benchmarks/gpu-results.txt
set -e
cd "$(dirname "$0")/.."
python -c "import tensorflow as tf; print('devices:', tf.config.list_physical_devices())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
python benchmarks/xla.py --epochs 4
python benchmarks/pipeline.py
python benchmarks/overhead.py --rounds 3 --epochs 6
python benchmarks/cli_latency.py
