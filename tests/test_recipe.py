"""Issue 2.6: recipes are validated on load: one line naming the file, the key and the problem; exit 2."""
import pytest

from conftest import REPO, run_cli
from tinyschool.recipe import RecipeError, load_recipe

GOOD = """
name = "r"
template = "tinystories"
count = 4
[sampling]
temperature = 0.7
[backend]
name = "local"
"""


def check_cli_error(tmp_path, body, *expected):
    p = tmp_path / "recipe.toml"
    p.write_text(body)
    r = run_cli("generate", p)
    assert r.returncode == 2, (r.stdout, r.stderr)
    err = r.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert str(p) in err
    for e in expected:
        assert e in err, err


def test_demo_recipes_load():
    for p in sorted((REPO / "prompts" / "recipes").glob("*.toml")):
        try:
            load_recipe(p)
        except RecipeError as e:  # a recipe may need something this machine lacks (a server, a GPU)
            pytest.fail(f"{p.name}: {e}")


def test_overrides(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text(GOOD)
    r = load_recipe(p, {"out": str(tmp_path / "x"), "count": 9})
    assert r.count == 9 and r.out_dir == tmp_path / "x"
    assert load_recipe(p).out_dir.as_posix() == "data/r"


def test_unknown_key(tmp_path):
    check_cli_error(tmp_path, GOOD.replace("temperature", "temprature"), "sampling.temprature", "unknown key")


def test_wrong_type(tmp_path):
    check_cli_error(tmp_path, GOOD.replace("count = 4", 'count = "many"'), "count", "integer")


def test_missing_template(tmp_path):
    check_cli_error(tmp_path, GOOD.replace('"tinystories"', '"no_such_template"'), "template", "file not found")


def test_missing_vocabulary(tmp_path):
    body = GOOD.replace('count = 4', 'count = 4\nvocabulary = "nowhere/vocab.tsv"')
    check_cli_error(tmp_path, body, "vocabulary", "file not found")


def test_broken_toml(tmp_path):
    check_cli_error(tmp_path, "name = \n", "invalid TOML")


def test_missing_file(tmp_path):
    r = run_cli("generate", tmp_path / "nope.toml")
    assert r.returncode == 2 and "recipe file not found" in r.stderr and "Traceback" not in r.stderr
