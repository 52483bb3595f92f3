"""``[distribute]`` -> a tf.distribute strategy. Building and compiling happen in its scope; Keras's fit
distributes the batches (``train.batch_size`` is the global batch)."""

from __future__ import annotations

import contextlib
import json
import os

from framework.errors import RunError
from framework.spec.schema import Spec


def make_strategy(spec: Spec):
    """The spec's strategy, or None without ``[distribute]``. Call before TensorFlow has placed anything."""
    if spec.distribute is None:
        return None
    import tensorflow as tf

    dist = spec.distribute
    try:
        if dist.strategy == "mirrored":
            devices = dist.devices
            if dist.cpu_devices:
                _split_cpu(dist.cpu_devices)
                devices = devices or [d.name for d in tf.config.list_logical_devices("CPU")]
            return tf.distribute.MirroredStrategy(devices=devices)
        if dist.strategy == "multi_worker":
            if not os.environ.get("TF_CONFIG"):
                raise RunError(
                    "multi_worker takes its cluster from the TF_CONFIG environment variable, which is not set",
                    path="distribute.strategy",
                )
            patch_keras_for_multi_worker()
            implementation = {
                "auto": tf.distribute.experimental.CommunicationImplementation.AUTO,
                "ring": tf.distribute.experimental.CommunicationImplementation.RING,
                "nccl": tf.distribute.experimental.CommunicationImplementation.NCCL,
            }[dist.communication]
            return tf.distribute.MultiWorkerMirroredStrategy(
                communication_options=tf.distribute.experimental.CommunicationOptions(implementation=implementation)
            )
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=dist.tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    except RunError:
        raise
    except Exception as exc:
        raise RunError(
            f"cannot start the {dist.strategy} strategy: {str(exc).strip().splitlines()[0][:300]}", path="distribute"
        ) from None


def _split_cpu(count: int) -> None:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        existing = len(tf.config.list_logical_devices("CPU"))
        if existing != count:
            raise RunError(
                f"the CPU is already split into {existing} devices in this process; cpu_devices must be set "
                "before TensorFlow starts", path="distribute.cpu_devices",
            ) from None


def scope(strategy):
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def is_chief(strategy) -> bool:
    """Whether this process writes the run folder: always, except on the non-chief workers of multi_worker."""
    if strategy is None or not os.environ.get("TF_CONFIG"):
        return True
    config = json.loads(os.environ["TF_CONFIG"])
    task, cluster = config.get("task", {}), config.get("cluster", {})
    if "chief" in cluster:
        return task.get("type") == "chief"
    return task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0


def worker_share(strategy) -> tuple[int, int]:
    """(how many workers, this one's index): what a source that shards by file needs; (1, 0) but for multi_worker."""
    resolver = getattr(strategy, "cluster_resolver", None)
    cluster = resolver.cluster_spec() if resolver is not None else None
    if cluster is None or not cluster.as_dict():
        return 1, 0
    jobs = [job for job in ("chief", "worker") if job in cluster.jobs]
    before = cluster.num_tasks("chief") if resolver.task_type == "worker" and "chief" in jobs else 0
    return sum(cluster.num_tasks(job) for job in jobs), before + int(resolver.task_id)


def describe(spec: Spec, strategy) -> dict:
    """For metrics.json: the strategy as the spec names it, and how many replicas trained in sync."""
    if strategy is None:
        return {}
    return {"strategy": spec.distribute.strategy, "replicas": int(strategy.num_replicas_in_sync)}


# --- Keras 3 and MultiWorkerMirroredStrategy ------------------------------------------------
# Keras 3's fit() fails under MultiWorkerMirroredStrategy (keras-team/keras#20585): it averages the first
# distributed batch with a cross-worker reduce to build the model, and averages scalar logs with
# reduce(axis=0). The two functions below take the first local replica's batch to build, and average
# scalars over workers with axis=None. Both touch Keras internals, so they check those exist.


def patch_keras_for_multi_worker() -> None:
    import tensorflow as tf
    from keras import tree

    from framework.compat import tensorflow_trainer

    trainer = tensorflow_trainer()
    if getattr(trainer.reduce_per_replica, "_framework_patched", False):
        return
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None) if isinstance(v, tf.distribute.DistributedValues) else v,
                values,
            )
        return original(values, strategy, reduction)

    reduce_per_replica._framework_patched = True
    trainer.reduce_per_replica = reduce_per_replica


def multi_worker_model(model):
    """The functional model as a subclass that builds from one local replica's batch (see above)."""
    import keras
    import tensorflow as tf
    from keras import tree

    from framework.compat import symbolic_build

    class MultiWorkerModel(keras.Model):
        def _maybe_symbolic_build(self, iterator=None, data_batch=None):
            if iterator is None:
                return super()._maybe_symbolic_build(iterator, data_batch)
            strategy = self.distribute_strategy
            for _, _, it in iterator:
                batch = next(it)
                data_batch = tree.map_structure(
                    lambda v: strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues) else v,
                    batch,
                )
                break
            with strategy.scope():
                symbolic_build(self, data_batch)

    return MultiWorkerModel(inputs=model.inputs, outputs=model.outputs, name=model.name)
