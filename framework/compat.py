"""Every use of a library's internals, in one place.

The public APIs of Keras, TensorFlow and keras-tuner lack a few things the framework needs. Each is reached
here, through one function that checks the internal still exists and says clearly which library changed
when it does not. ``tests/test_compat.py`` calls every function, so an upgrade that breaks one fails there
first, with the message below, rather than deep inside a run.
"""

from __future__ import annotations

import sys
import threading
import types
from pathlib import Path

from framework.errors import RunError


def _missing(what: str, library: str) -> RunError:
    import importlib.metadata as md

    try:
        version = md.version(library)
    except md.PackageNotFoundError:
        version = "not installed"
    return RunError(f"{what} is missing from {library} {version}: framework/compat.py needs updating for this version")


def set_op_determinism(on: bool) -> None:
    """Turn TensorFlow's deterministic ops on or off (the public API can only turn them on)."""
    try:
        from tensorflow.python.framework import config as tf_config
    except ImportError:
        raise _missing("tensorflow.python.framework.config", "tensorflow") from None
    if on:
        tf_config.enable_op_determinism()
    else:
        tf_config.disable_op_determinism()


def op_determinism() -> bool:
    """Whether TensorFlow's deterministic ops are on (the public API has no getter)."""
    try:
        from tensorflow.python.framework import config as tf_config
    except ImportError:
        raise _missing("tensorflow.python.framework.config", "tensorflow") from None
    return bool(tf_config.is_op_determinism_enabled())


def image_preprocessing_base() -> type:
    """Keras's base class of image augmentation layers (not exported; it is how they are recognised)."""
    try:
        from keras.src.layers.preprocessing.image_preprocessing.base_image_preprocessing_layer import (
            BaseImagePreprocessingLayer,
        )
    except ImportError:
        raise _missing("BaseImagePreprocessingLayer", "keras") from None
    return BaseImagePreprocessingLayer


def inbound_nodes(layer) -> list:
    """The calls of a layer in a functional graph (Keras has no public accessor)."""
    if not hasattr(layer, "_inbound_nodes"):
        raise _missing("Layer._inbound_nodes", "keras")
    return list(layer._inbound_nodes)


def loss_tracker(model):
    """The mean tracker behind the logged 'loss', which a custom train_step updates as Keras's own does."""
    tracker = getattr(model, "_loss_tracker", None)
    if tracker is None or not hasattr(tracker, "update_state"):
        raise _missing("Model._loss_tracker", "keras")
    return tracker


def per_example_seeds(model, index):
    """A context in which every random layer of ``model`` (nested ones too) draws with ``index`` folded into its
    seed, for a function that ``tf.vectorized_map`` maps over examples: there a layer's seed generator is read once
    for all of them, so a Dropout would drop the same units of every example. The generators' state advances as
    before (checkpoints and resumes are unchanged). A layer that draws from Keras's global generator (``seed=None``
    passed to ``keras.random``) or keeps its generators in a list is not reached. Keras internals:
    ``Layer._flatten_layers`` and the layers' SeedGenerator attributes, swapped without Keras's tracking and put back
    on leaving."""
    import contextlib

    import keras
    import tensorflow as tf

    if not hasattr(model, "_flatten_layers"):
        raise _missing("Layer._flatten_layers", "keras")

    class ExampleSeedGenerator(keras.random.SeedGenerator):
        def __init__(self, generator):  # no state of its own: the wrapped generator's advances
            self.generator, self.name, self.backend = generator, generator.name, generator.backend

        @property
        def state(self):
            return self.generator.state

        def get_config(self):
            return self.generator.get_config()

        def next(self, ordered=True):
            # int32, as XLA's stateless ops need; folded in, not added: seeds the framework numbers seed, seed + 1, ...
            # plus the index would give layer i's example k + 1 layer i + 1's draws for example k
            seed = tf.cast(tf.math.floormod(self.generator.next(ordered), tf.int32.max - 1), tf.int32)
            return tf.random.experimental.stateless_fold_in(seed, tf.cast(index, tf.int32))

    @contextlib.contextmanager
    def swapped():
        originals = [(layer, name, value) for layer in model._flatten_layers(include_self=True, recursive=True)
                     for name, value in vars(layer).items() if isinstance(value, keras.random.SeedGenerator)]
        try:
            for layer, name, value in originals:
                object.__setattr__(layer, name, ExampleSeedGenerator(value))
            yield
        finally:
            for layer, name, value in originals:
                object.__setattr__(layer, name, value)

    return swapped()


def symbolic_build(model, element_spec) -> None:
    """Keras's own build of a compiled model's loss, metrics and optimizer from symbolic inputs shaped like
    ``element_spec`` (x, y[, sample_weight] TensorSpecs); its TensorFlow trainer calls it only under a distribution
    strategy (``Trainer._symbolic_build``)."""
    if not hasattr(model, "_symbolic_build"):
        raise _missing("Trainer._symbolic_build", "keras")
    model._symbolic_build(data_batch=element_spec)


def tensorflow_trainer():
    """Keras's TensorFlow trainer module (the multi-worker fixes in train/distribute.py patch it)."""
    try:
        from keras.src.backend.tensorflow import trainer
    except ImportError:
        raise _missing("keras.src.backend.tensorflow.trainer", "keras") from None
    if not hasattr(trainer, "reduce_per_replica") or not hasattr(trainer, "_collective_all_reduce_multi_worker"):
        raise _missing("trainer.reduce_per_replica", "keras")
    return trainer


def quiet_keras_tuner() -> None:
    """keras-tuner prints each failed trial's stack trace unless its DEBUG flag is off."""
    try:
        from keras_tuner.src import config as kt_config
    except ImportError:
        raise _missing("keras_tuner.src.config", "keras-tuner") from None
    kt_config.DEBUG = False


def text_tokens(vectorizer, texts) -> list[list[str]]:
    """The tokens a TextVectorization layer makes of each text (its standardize and split, before the
    vocabulary); Word2VecEmbedding trains on them, so its words are the vocabulary's words."""
    import tensorflow as tf

    preprocess = getattr(vectorizer, "_preprocess", None)
    if preprocess is None:
        raise _missing("TextVectorization._preprocess", "keras")
    tokens = preprocess(tf.constant([str(t) for t in texts]))
    rows = tokens.to_list() if hasattr(tokens, "to_list") else tokens.numpy().tolist()
    return [[t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in row if t] for row in rows]


def kymatio_scattering2d():
    """kymatio's TensorFlow 2-D scattering class. Imported from its own module: ``kymatio.keras`` and
    ``kymatio.tensorflow`` also import the 3-D transform, which needs ``scipy.special.sph_harm`` (gone in SciPy 1.17)."""
    try:
        from kymatio.scattering2d.frontend.tensorflow_frontend import ScatteringTensorFlow2D
    except ModuleNotFoundError as exc:
        if exc.name == "kymatio":
            from framework.errors import SpecError

            raise SpecError("Scattering2D needs kymatio: pip install 'framework[scattering]' (or pip install kymatio)",
                            path="model.layers") from None
        raise _missing("kymatio.scattering2d.frontend.tensorflow_frontend", "kymatio") from None
    except ImportError:
        raise _missing("kymatio.scattering2d.frontend.tensorflow_frontend", "kymatio") from None
    return ScatteringTensorFlow2D


def run_exit_handlers() -> None:
    """Run the ``atexit`` handlers now, as the interpreter would at exit (Python has no public call for it).
    The CLI runs them before ending its process with ``os._exit`` (see ``framework.process``)."""
    import atexit

    run = getattr(atexit, "_run_exitfuncs", None)
    if run is None:
        raise _missing("atexit._run_exitfuncs", "python")
    run()


#: Keras modules that import an optional library when they load, although nothing in them runs until they are
#: used: the scikit-learn wrappers import scikit-learn (and with it SciPy's stats, ~0.6 s) and the image galleries
#: import matplotlib's pyplot (~0.35 s). Keras's package imports all three at start-up.
KERAS_OPTIONAL_INTEGRATIONS = ("keras.wrappers", "keras.visualization", "keras.src.visualization")
_deferred_loaders: dict = {}
_deferred_lock = threading.RLock()  # re-entrant: running one deferred module may read another


class _DeferredModule(types.ModuleType):
    """A module in ``sys.modules`` whose code runs the first time one of its names is read.

    Python's ``importlib.util.LazyLoader`` cannot do this here: an ``import`` statement naming a lazy module reads
    its ``__spec__``, which runs it. This one answers its import attributes (set by ``module_from_spec``) without
    running, so Keras's own ``from keras import wrappers`` binds it unexecuted.
    """

    def __getattr__(self, name: str):
        if not (name.startswith("__") and name.endswith("__")) or name == "__all__":
            with _deferred_lock:  # one thread runs the module; another asking meanwhile waits, then reads it
                loader = _deferred_loaders.pop(self.__name__, None)
                if loader is not None:
                    try:  # meanwhile other threads wait above; this one reads the partly run module as usual
                        loader.exec_module(self)
                    except BaseException:
                        sys.modules.pop(self.__name__, None)  # as a failed import: the next import fails again
                        raise
                    finally:
                        self.__class__ = types.ModuleType  # from now on an ordinary module
            if name in self.__dict__:
                return self.__dict__[name]
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")


def defer_keras_optional_integrations() -> None:
    """Run Keras's scikit-learn wrappers and image galleries on first use instead of at ``import keras``.

    Call before TensorFlow or Keras is imported (TensorFlow imports Keras); a process that has imported Keras
    already is left as it is. ``keras.wrappers.SKLearnClassifier`` and ``keras.visualization.plot_image_gallery``
    work as before: reading them runs their modules then.
    """
    import importlib.machinery
    import importlib.util

    if "keras" in sys.modules:
        return
    root = importlib.util.find_spec("keras")  # a top-level package: found without running it
    if root is None or not root.submodule_search_locations:
        return  # no Keras: the import that follows reports it
    for name in KERAS_OPTIONAL_INTEGRATIONS:
        parent_parts = name.split(".")[1:-1]
        directories = [str(Path(d, *parent_parts)) for d in root.submodule_search_locations]
        spec = importlib.machinery.PathFinder.find_spec(name, directories)
        if spec is None or spec.loader is None:
            continue  # not in this Keras (keras.wrappers came in 3.8): nothing to defer, only a speed-up lost
        module = importlib.util.module_from_spec(spec)
        module.__class__ = _DeferredModule
        _deferred_loaders[name] = spec.loader
        sys.modules[name] = module
