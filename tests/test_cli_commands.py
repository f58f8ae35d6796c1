"""The CLI's command table: every command is registered by the module it names, with the same help
line, and running one command imports only its module (not torch for a query)."""
from __future__ import annotations

import subprocess
import sys

from conftest import REPO
from tinyschool.cli import COMMANDS, build_parser


def _helps(parser) -> dict[str, str]:
    sub = next(a for a in parser._actions if a.dest == "command")
    return {a.dest: a.help for a in sub._choices_actions}


def test_every_command_is_registered_by_its_module_with_the_table_help():
    full = _helps(build_parser())
    assert set(full) == set(COMMANDS)
    for name, (_, help_) in COMMANDS.items():
        assert full[name] == help_, name
        one = build_parser(name)
        assert _helps(one) == full
        sub = next(a for a in one._actions if a.dest == "command")
        assert sub.choices[name].get_default("func") is not None or name == "vocab", name  # the real parser, not a stub


def test_a_light_command_does_not_load_torch():
    code = ("import sys; from tinyschool.cli import build_parser; build_parser('query'); "
            "print('torch' in sys.modules, 'tinyschool.commands.train' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
