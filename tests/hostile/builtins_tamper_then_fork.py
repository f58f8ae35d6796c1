# expect: blocked
import builtins
import os


def solution():
    builtins.open = lambda *a, **k: None
    os.fork()
    return 1
