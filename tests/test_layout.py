"""Issue 2.1/2.2: the layout, the import direction, and CI running the README's test command."""
import ast
import re
import tomllib

from conftest import REPO

PACKAGES = ["tinyschool", "generators", "filters", "corpora", "curricula", "trainers", "prompts"]
TOP = set(PACKAGES)


def imported_packages(pkg: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (REPO / pkg).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for n in names:
                top = n.split(".")[0]
                if top in TOP and top != pkg:
                    found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def test_root_layout():
    for name in ["pyproject.toml", "README.md", "tests", "bench", ".ci/run", *PACKAGES]:
        assert (REPO / name).exists(), name


def test_one_distribution_with_console_command():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "tinyschool"
    assert meta["project"]["scripts"]["tinyschool"] == "tinyschool.cli:main"


def test_no_package_imports_tinyschool():
    for pkg in PACKAGES:
        if pkg == "tinyschool":
            continue
        assert "tinyschool" not in imported_packages(pkg), (pkg, imported_packages(pkg).get("tinyschool"))


def test_corpora_imports_no_other_package():
    assert imported_packages("corpora") == {}, imported_packages("corpora")


def test_siblings_do_not_import_each_other():
    # generators, filters, curricula, trainers import corpora (and prompts, which is data);
    # trainers reads corpora through curricula
    allowed = {"generators": {"corpora", "prompts"}, "filters": {"corpora", "prompts"},
               "curricula": {"corpora", "prompts"}, "trainers": {"corpora", "prompts", "curricula"}}
    for pkg, ok in allowed.items():
        bad = {k: v for k, v in imported_packages(pkg).items() if k not in ok}
        assert not bad, (pkg, bad)


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", readme, flags=re.S)
    commands = [line.strip() for b in blocks for line in b.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert len(commands) >= 2
    first, second = commands[0], commands[1]
    assert "demo" in first and "test" in second
    assert second in (REPO / ".ci" / "run").read_text()
