"""LIME (Ribeiro et al. 2016) for ``explain --method lime``, through the ``lime`` package (the ``explain`` extra).

Each explanation perturbs one example (tabular: samples from the training split's feature statistics; text:
tokens dropped; images: superpixels set to the baseline), weights the perturbed samples by an exponential
kernel on their distance to the example, fits a weighted ridge regression of the model's probability of the
predicted class, and reports the ridge's coefficients: one weight per feature, token or superpixel.
"""

from __future__ import annotations

import contextlib
import io
from typing import Callable

import numpy as np

from framework.errors import RunError

SAMPLES = {"tabular": 500, "text": 300, "image": 300}


def require_lime():
    try:
        import lime  # noqa: F401
    except ImportError:
        raise RunError("--method lime needs the lime package: pip install 'framework[explain]'", path="--method") from None


def _as_probabilities(predict: Callable) -> Callable:
    """LIME's classifier function: (n, classes) probabilities; a sigmoid's one column becomes two."""

    def probabilities(x):
        outputs = np.asarray(predict(x), dtype="float64")
        return np.concatenate([1 - outputs, outputs], axis=1) if outputs.shape[1] == 1 else outputs

    return probabilities


def _label(classes, outputs_width: int, i: int) -> int:
    return 1 if outputs_width == 1 else int(classes[i])  # a sigmoid explains P(class 1)


def lime_tabular(predict: Callable, x: np.ndarray, background: np.ndarray, classes: np.ndarray, outputs_width: int,
                 feature_names: list[str] | None = None, seed: int = 0, samples: int = SAMPLES["tabular"],
                 discretize: bool = True) -> np.ndarray:
    """One LIME weight per feature and example (LimeTabularExplainer; by default features are discretized into
    quartiles and a weight says how much "x_j in its quartile" speaks for the class; without, a weight is per
    training standard deviation of the feature)."""
    require_lime()
    from lime.lime_tabular import LimeTabularExplainer

    explainer = LimeTabularExplainer(
        background, mode="classification", feature_names=feature_names, discretize_continuous=discretize,
        random_state=seed,
    )
    fn = _as_probabilities(lambda v: predict(v.astype("float32")))
    weights = np.zeros(x.shape, dtype="float64")
    for i in range(len(x)):
        label = _label(classes, outputs_width, i)
        explanation = explainer.explain_instance(x[i], fn, labels=(label,), num_features=x.shape[1], num_samples=samples)
        for feature, weight in explanation.as_map()[label]:
            weights[i, feature] = weight
    return weights


def lime_text(predict: Callable, tokens_per_text: list[list[str]], classes: np.ndarray, outputs_width: int,
              seed: int = 0, samples: int = SAMPLES["text"]) -> list[np.ndarray]:
    """One LIME weight per token position (LimeTextExplainer without bag of words; a dropped token is removed)."""
    require_lime()
    from lime.lime_text import LimeTextExplainer

    explainer = LimeTextExplainer(split_expression=r"\s+", bow=False, mask_string="", random_state=seed)
    fn = _as_probabilities(lambda texts: predict(np.array(texts, dtype=object)))
    out = []
    for i, tokens in enumerate(tokens_per_text):
        weights = np.zeros(len(tokens))
        if tokens:
            label = _label(classes, outputs_width, i)
            explanation = explainer.explain_instance(" ".join(tokens), fn, labels=(label,), num_features=len(tokens),
                                                     num_samples=samples)
            for position, weight in explanation.as_map()[label]:
                if position < len(tokens):
                    weights[position] = weight
        out.append(weights)
    return out


def superpixels(image: np.ndarray) -> np.ndarray:
    """SLIC superpixels (scikit-image) of an (H, W, 3) image: about 2x2-pixel cells on tiny images, up to 64 on
    large ones; a regular grid when SLIC finds fewer than 4 segments."""
    height, width = image.shape[:2]
    wanted = int(min(64, max(4, height * width // 4)))
    try:
        from skimage.segmentation import slic

        segments = slic(image, n_segments=wanted, compactness=10.0, start_label=0, channel_axis=-1)
        if len(np.unique(segments)) >= 4:
            return segments
    except ImportError:
        pass
    side = max(1, int(round(np.sqrt(height * width / wanted))))
    rows, cols = np.meshgrid(np.arange(height) // side, np.arange(width) // side, indexing="ij")
    return rows * (int(np.ceil(width / side))) + cols


def lime_image(predict: Callable, x: np.ndarray, classes: np.ndarray, outputs_width: int, seed: int = 0,
               samples: int = SAMPLES["image"]) -> np.ndarray:
    """One LIME weight per pixel (its superpixel's), for (N, H, W, C) images; hidden superpixels are set to 0."""
    require_lime()
    from lime.lime_image import LimeImageExplainer

    channels = x.shape[-1]
    explainer = LimeImageExplainer(random_state=seed)

    def classifier(images):  # LIME works on RGB: grey images go back to one channel
        images = np.asarray(images, dtype="float32")
        if channels == 1:
            images = images[..., :1]
        return _as_probabilities(predict)(images)

    maps = np.zeros(x.shape[:-1], dtype="float64")
    for i in range(len(x)):
        image = np.repeat(x[i], 3, axis=-1) if channels == 1 else x[i]
        label = _label(classes, outputs_width, i)
        with contextlib.redirect_stderr(io.StringIO()):  # LIME's own progress bar
            explanation = explainer.explain_instance(
                image.astype("float64"), classifier, labels=(label,), top_labels=None, hide_color=0, num_features=100000,
                num_samples=samples, batch_size=samples, segmentation_fn=superpixels, random_seed=seed,
            )
        for segment, weight in explanation.local_exp[label]:
            maps[i][explanation.segments == segment] = weight
    return maps
