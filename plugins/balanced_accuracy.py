"""Balanced accuracy: the mean of per-class recall, honest on imbalanced data (e.g. SMS spam).

    [train]
    metrics = ["accuracy", "balanced_accuracy"]
"""

import keras
from keras import ops

from framework.registry import registry


@registry.register("metric", "balanced_accuracy")
class BalancedAccuracy(keras.metrics.Metric):
    """For integer labels and softmax (or one-hot) outputs; accumulates a confusion matrix over the epoch."""

    def __init__(self, num_classes=None, name="balanced_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.hits = None

    def _ensure_state(self, classes):
        if self.hits is None:
            self.num_classes = self.num_classes or classes
            self.hits = self.add_variable((self.num_classes,), initializer="zeros", name="hits")
            self.counts = self.add_variable((self.num_classes,), initializer="zeros", name="counts")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self._ensure_state(int(y_pred.shape[-1]))
        if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == self.num_classes:
            y_true = ops.argmax(y_true, axis=-1)  # one-hot (or mixed) targets
        y_true = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        y_hat = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        truth = ops.one_hot(y_true, self.num_classes)
        self.counts.assign_add(ops.sum(truth, axis=0))
        self.hits.assign_add(ops.sum(truth * ops.cast(ops.equal(y_true, y_hat), "float32")[:, None], axis=0))

    def result(self):
        if self.hits is None:
            return ops.convert_to_tensor(0.0)
        seen = ops.cast(self.counts > 0, "float32")
        recall = ops.divide_no_nan(self.hits, self.counts)
        return ops.sum(recall * seen) / ops.maximum(ops.sum(seen), 1.0)

    def reset_state(self):
        if self.hits is not None:
            self.hits.assign(ops.zeros_like(self.hits))
            self.counts.assign(ops.zeros_like(self.counts))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
