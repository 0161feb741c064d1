"""The README's two commands are the ones CI runs and the ones that work."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [b.strip() for b in blocks if b.strip().startswith("pip install")]


def test_readme_has_install_and_test_commands_with_pinned_torch():
    main, tests = readme_commands()[:2]
    assert "torch==2.13.0" in main and "torch==2.13.0" in tests
    assert "python train/" in main
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command_verbatim():
    tests = readme_commands()[1]
    assert tests in (ROOT / ".ci" / "run").read_text()


def test_readme_picture_exists():
    text = (ROOT / "README.md").read_text()
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (ROOT / image).is_file(), f"README links a missing picture: {image}"
