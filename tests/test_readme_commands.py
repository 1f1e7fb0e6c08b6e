"""CI runs the README's test command: the command under "# the tests" in README.md is in ``.ci/run`` verbatim.

A step that CI has and the README lacks (such as TF Serving's protos, which two test files import) would leave a
reader's fresh machine failing where CI passes.
"""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def readme_test_command() -> str:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# the tests"))
    return next(line for line in lines[start:] if line.strip() and not line.startswith("#")).strip()


def test_ci_runs_the_readme_test_command():
    command = readme_test_command()
    assert command.startswith("pip install") and "python -m pytest" in command, command
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert command in ci, f".ci/run does not run the README's test command: {command}"
