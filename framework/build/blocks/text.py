"""Text standardization for TextVectorization that keeps every vocabulary token on one line.

A spec names them as Keras does: TextVectorization's ``standardize`` is ``"lower_and_strip_punctuation"`` (the
default), ``"lower"``, ``"strip_punctuation"`` or ``null``; the framework gives the layer the line-break-safe
function of that name (``text_lower_and_strip_punctuation``, ``text_lower``, ``text_strip_punctuation``,
``text_one_line``), saved with the model::

    { type = "TextVectorization", max_tokens = 10000, standardize = "lower" }

Keras saves an adapted vocabulary one token per line and reads it back with ``str.splitlines``, which also
breaks lines at U+0085 (NEL), U+2028/U+2029 (line/paragraph separators), \\x1c-\\x1e, \\v and \\f. The default
whitespace split keeps those characters inside tokens, so a training text with a lone U+0085 gave a token that
saved as two lines, and model.keras could not be loaded again. These standardizers do what Keras's named ones
do, and first turn each of those characters into a space; the saved model applies them at prediction time too.
"""

from __future__ import annotations

import keras

#: every character str.splitlines() breaks at (RE2 syntax)
LINE_BREAKS = r"[\n\r\x{0B}\x{0C}\x{1C}-\x{1E}\x{85}\x{2028}\x{2029}]"
#: Keras's "strip_punctuation" pattern
PUNCTUATION = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'


def _one_line(inputs):
    import tensorflow as tf

    return tf.strings.regex_replace(inputs, LINE_BREAKS, " ")


@keras.saving.register_keras_serializable(package="framework")
def text_lower_and_strip_punctuation(inputs):
    """Lower-case, then strip punctuation (Keras's default standardize), with line breaks as spaces."""
    import tensorflow as tf

    return tf.strings.regex_replace(tf.strings.lower(_one_line(inputs)), PUNCTUATION, "")


@keras.saving.register_keras_serializable(package="framework")
def text_lower(inputs):
    """Lower-case, with line breaks as spaces (standardize = "lower")."""
    import tensorflow as tf

    return tf.strings.lower(_one_line(inputs))


@keras.saving.register_keras_serializable(package="framework")
def text_strip_punctuation(inputs):
    """Strip punctuation, with line breaks as spaces (standardize = "strip_punctuation")."""
    import tensorflow as tf

    return tf.strings.regex_replace(_one_line(inputs), PUNCTUATION, "")


@keras.saving.register_keras_serializable(package="framework")
def text_one_line(inputs):
    """Only line breaks as spaces (standardize = null)."""
    return _one_line(inputs)


STANDARDIZERS_BY_NAME = {
    "lower_and_strip_punctuation": text_lower_and_strip_punctuation,
    "lower": text_lower,
    "strip_punctuation": text_strip_punctuation,
    None: text_one_line,
}


def one_line_standardizer(standardize):
    """The line-break-safe form of one of Keras's ``standardize`` values; anything else is returned as is."""
    if standardize is None or isinstance(standardize, str):
        return STANDARDIZERS_BY_NAME.get(standardize, standardize)
    return standardize
