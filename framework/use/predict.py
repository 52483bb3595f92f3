"""``predict``: a trained run applied to new inputs, written as CSV or JSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from framework.errors import DataError, FrameworkError
from framework.reports import run_folder as rf
from framework.use.inputs import read_inputs
from framework.use.trained import TrainedRun


def predict_table(run: TrainedRun, input_path: str | Path):
    """One row per input example: where it came from, the prediction, and class probabilities."""
    import pandas as pd

    x, labels = read_inputs(run, input_path)
    if run.kind == "sequence":
        from framework.data.sequences import greedy_decode

        return pd.DataFrame({"input": labels, "prediction": greedy_decode(run.model, run.encoding(), list(x))})
    model = run.model
    try:
        predictions = model.predict(x, batch_size=256, verbose=0)
    except Exception as exc:  # a mismatch the checks above did not catch
        raise DataError(f"the model cannot read these inputs: {str(exc).strip().splitlines()[0][:300]}",
                        path=str(input_path)) from None
    if isinstance(predictions, dict):
        predictions = list(predictions.values())
    if isinstance(predictions, list):  # several outputs: one block of columns per output
        names = run.model.output_names
        frame = pd.DataFrame({"input": labels})
        for name, values in zip(names, predictions):
            for key, column in run.describe_outputs(np.asarray(values)).items():
                frame[f"{name}.{key}"] = column
        return frame
    return pd.DataFrame({"input": labels, **run.describe_outputs(np.asarray(predictions))})


def write_table(frame, output: str | Path | None) -> str | None:
    """CSV or JSON by the output's suffix; None writes CSV to stdout (returned as text)."""
    if output is None:
        return frame.to_csv(index=False)
    output = Path(output)
    if output.suffix.lower() not in (".csv", ".json"):
        raise FrameworkError(f"write .csv or .json, not '{output.suffix}'", path="--output")
    output.parent.mkdir(parents=True, exist_ok=True)
    text = frame.to_csv(index=False) if output.suffix.lower() == ".csv" else frame.to_json(orient="records", indent=2)
    rf.write_atomic(output, text)
    return None
