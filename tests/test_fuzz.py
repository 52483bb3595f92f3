"""Property-based: a mutated spec gets a spec error (exit 2) or passes, never a traceback."""

import json
import math
import tomllib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import SPECS

BASES = {
    name: (json.loads((SPECS / name).read_text()) if name.endswith(".json") else tomllib.loads((SPECS / name).read_text()))
    for name in ("quickstart.toml", "quickstart.json", "overfit_regularized.toml")
}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["Dense", "Densse", "relu", "sklearn:digits", "csv:nope.csv", "../../x", "auto"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield prefix, key
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield prefix, i
            yield from _paths(value, prefix + (i,))


@st.composite
def mutated_specs(draw):
    spec = json.loads(json.dumps(BASES[draw(st.sampled_from(sorted(BASES)))]))
    for _ in range(draw(st.integers(1, 3))):
        targets = list(_paths(spec))
        if not targets:
            break
        parent_path, key = draw(st.sampled_from(targets))
        parent = spec
        for part in parent_path:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "extra"]))
        if action == "delete":
            del parent[key]
        elif action == "extra" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(values)
        else:
            parent[key] = draw(values)
    return spec


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(spec=mutated_specs())
def test_mutated_specs_never_give_a_traceback(cli, tmp_path, spec):
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(spec, allow_nan=True), encoding="utf-8", errors="surrogatepass")
    code, out, err = cli("check", path)  # an exception other than a spec error fails this test
    assert code in (0, 2)
    if code == 2:
        assert err.strip() and "Traceback" not in err


def test_nan_and_infinite_numbers_are_spec_errors(cli, tmp_path):
    spec = json.loads(json.dumps(BASES["quickstart.json"]))
    for key, value in (("learning_rate", math.nan), ("learning_rate", math.inf)):
        spec["train"]["optimizer"][key] = value
        path = tmp_path / "nan.json"
        path.write_text(json.dumps(spec, allow_nan=True))
        code, _, err = cli("check", "--schema-only", path)
        assert code == 2 and "train.optimizer.learning_rate" in err
