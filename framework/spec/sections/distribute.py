"""The [distribute] section: training on several devices or machines with tf.distribute."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from framework.spec.sections.base import StrictModel


class DistributeSpec(StrictModel):
    """Training on several devices or machines with tf.distribute. ``train.batch_size`` stays the global batch
    (all replicas together); each replica takes batch_size / replicas examples per step."""

    strategy: Literal["mirrored", "multi_worker", "tpu"] = Field(
        description=(
            "'mirrored': tf.distribute.MirroredStrategy over this machine's devices; 'multi_worker': "
            "MultiWorkerMirroredStrategy, the cluster from the TF_CONFIG environment variable; 'tpu': TPUStrategy."
        )
    )
    devices: list[str] | None = Field(
        None, description="mirrored: the devices, e.g. ['/gpu:0', '/gpu:1'] (default: every GPU, else the CPU)."
    )
    cpu_devices: int | None = Field(
        None, ge=2, le=64,
        description="Split the host CPU into this many logical devices and mirror over them (to try mirrored without GPUs).",
    )
    tpu: str = Field("", description="tpu: the TPU's name or grpc:// address ('' = the local or default TPU).")
    communication: Literal["auto", "ring", "nccl"] = Field(
        "auto", description="multi_worker: the collective implementation ('nccl' needs GPUs)."
    )
