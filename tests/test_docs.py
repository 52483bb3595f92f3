"""The README stays true: its set-up commands are what CI runs, its spec reference is the schema's."""

from conftest import ROOT
from framework.spec.docs import spec_reference


def test_ci_runs_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    commands = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith(("python3 -m venv", ". .venv"))]
    assert len(commands) == 2
    for command in commands:
        assert f"\n{command}\n" in readme


def test_readme_spec_reference_is_generated_from_the_schema():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("<!-- spec-reference:start -->\n")[1].split("\n<!-- spec-reference:end -->")[0]
    assert section.strip() == spec_reference().strip(), "run: python -m framework schema --format markdown"
