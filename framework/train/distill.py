"""Knowledge distillation: a student model trained on the labels and on a teacher run's softened outputs."""

from __future__ import annotations

from pathlib import Path

import keras

from framework.errors import SpecError
from framework.reports import run_folder as rf
from framework.spec.schema import Spec

_EPS = 1e-7


def soften(probabilities, temperature: float):
    """Class probabilities at temperature T: softmax(log p / T)."""
    ops = keras.ops
    return ops.softmax(ops.log(ops.clip(ops.cast(probabilities, "float32"), _EPS, 1.0)) / temperature)


class DistillationModel(keras.Model):
    """A functional model whose training loss is alpha * loss(labels) + (1 - alpha) * T^2 * KL(teacher || student).

    Both models output class probabilities. Evaluation reports the plain loss on the labels,
    comparable with any other run.
    """

    teacher = None
    temperature = 4.0
    alpha = 0.1

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training)
        if not training or self.teacher is None:
            return loss
        ops = keras.ops
        teacher_soft = soften(self.teacher(x, training=False), self.temperature)
        student_soft = soften(y_pred, self.temperature)
        kl = ops.mean(ops.sum(
            teacher_soft * (ops.log(ops.clip(teacher_soft, _EPS, 1.0)) - ops.log(ops.clip(student_soft, _EPS, 1.0))),
            axis=-1,
        ))
        return self.alpha * loss + (1.0 - self.alpha) * self.temperature**2 * kl


def distillation_model(model, spec: Spec):
    """The student (``model``) wrapped so its training loss also matches the teacher's outputs; and the teacher."""
    teacher = rf.load_run_model(spec.distill.teacher)
    if tuple(teacher.output_shape) != tuple(model.output_shape):
        raise SpecError(
            f"the teacher's output has shape {teacher.output_shape}, the student's {model.output_shape}; "
            "both must give the same class probabilities", path="distill.teacher",
        )
    teacher.trainable = False
    student = DistillationModel(inputs=model.inputs, outputs=model.outputs, name=model.name)
    # not tracked as a sub-layer: the student's parameters, checkpoints and saved model stay its own
    object.__setattr__(student, "teacher", teacher)
    student.temperature, student.alpha = spec.distill.temperature, spec.distill.alpha
    return student, teacher


def teacher_facts(spec: Spec, teacher) -> dict:
    """The teacher's size and scores, for the student's report row."""
    metrics = rf.read_json(Path(spec.distill.teacher) / rf.METRICS)
    facts = {"teacher_run": Path(spec.distill.teacher).name, "teacher_params": int(teacher.count_params())}
    facts.update({f"teacher_{k}": v for k, v in metrics.items() if k.startswith("test_")})
    return facts
