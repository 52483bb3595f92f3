"""Data the framework generates itself, deterministically, so examples run offline."""

from __future__ import annotations

from framework.data.sources import DataSource, RawData
from framework.registry import registry

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """English words for 0 <= n < 1,000,000.

    >>> number_words(342)
    'three hundred forty-two'
    """
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + number_words(n % 100))
    return number_words(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + number_words(n % 1000))


def _number_words_pairs() -> RawData:
    import numpy as np

    numbers = np.arange(10_000)
    sources = np.array([number_words(int(n)) for n in numbers], dtype=object)
    targets = np.array([str(int(n)) for n in numbers], dtype=object)
    return RawData(sources, targets, info={"task": "English number words -> digits, 0..9999"})


_TASKS = {"number_words": _number_words_pairs}


@registry.register("data_source", "generated")
class GeneratedSource(DataSource):
    """Generated tasks: ``generated:number_words`` (sequence to sequence: 'three hundred forty-two' -> '342')."""

    choices, choice_kind = _TASKS, "generated task"

    def load(self) -> RawData:
        return _TASKS[self.arg]()
