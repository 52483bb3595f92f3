"""Packaging: the version, the project metadata, and `init`'s starter specs (copies of specs/ inside the package)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import ROOT, SPECS

EXAMPLE_NAMES = ["quickstart", "mnist_cnn", "text", "forecasting", "dp", "tune"]


def test_console_script_prints_the_version():
    from framework import __version__

    script = shutil.which("framework", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the framework console script is not installed in this environment")
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"framework {__version__}"


def test_version_in_process(cli, capsys):
    from framework import __version__

    with pytest.raises(SystemExit) as exit_:
        cli("--version")
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"framework {__version__}"


def test_project_metadata():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    from framework import __version__

    assert project["version"] == __version__
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License") and "Permission is hereby granted" in license_text
    assert project["authors"] and all(a.get("name") for a in project["authors"])
    assert len(project["keywords"]) >= 5 and "keras" in project["keywords"]
    classifiers = project["classifiers"]
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert not any(c.startswith("License ::") for c in classifiers)  # the SPDX license string replaces them
    assert any(r.startswith("jsonschema") for r in project["optional-dependencies"]["test"])
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["framework"]
    assert "spec/catalogue.json" in package_data and "examples/*.toml" in package_data


def test_examples_are_the_specs_in_specs():
    from framework.examples import EXAMPLES, HERE

    assert list(EXAMPLES) == EXAMPLE_NAMES
    for example in EXAMPLES.values():
        assert (HERE / example.spec).read_bytes() == (SPECS / example.spec).read_bytes(), (
            f"copy specs/{example.spec} to framework/examples/")
        for data in example.data:
            assert (HERE / data).read_bytes() == (SPECS / data).read_bytes(), f"copy specs/{data} to framework/examples/"


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_init_writes_a_starter_spec_that_passes_check(cli, tmp_path, monkeypatch, name):
    from framework.examples import EXAMPLES

    monkeypatch.chdir(tmp_path)
    code, out, err = cli("init", name)
    assert code == 0, err
    spec = tmp_path / EXAMPLES[name].spec
    assert spec.is_file() and f"wrote {spec.name}" in out
    for data in EXAMPLES[name].data:
        assert (tmp_path / data).is_file()
    code, out, err = cli("check", "--schema-only", spec.name)
    assert code == 0 and "valid spec" in out, err
    code, out, err = cli("check", spec.name)  # builds the model
    assert code == 0 and "parameters" in out, err


def test_init_refuses_to_overwrite(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart.toml").write_text("# mine\n")
    code, out, err = cli("init")
    assert code == 2 and "quickstart.toml already exists; not overwritten" in err
    assert (tmp_path / "quickstart.toml").read_text() == "# mine\n"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sunspots_yearly.csv").write_text("mine\n")
    code, _, err = cli("init", "forecasting")
    assert code == 2 and "sunspots_yearly.csv already exists" in err and not (tmp_path / "sunspots_gru.toml").exists()
    with pytest.raises(SystemExit):
        cli("init", "quickstrat")
