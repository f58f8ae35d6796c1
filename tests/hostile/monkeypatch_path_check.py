# expect: blocked
# Patching the Python helpers a naive hook would rely on (os.path, builtins) changes nothing.
import builtins
import os


def solution():
    os.path.realpath = lambda p: "{{CANARY_DIR}}"
    os.path.normpath = lambda p: "/tmp"
    os.getcwd = lambda: "/"
    builtins.isinstance = lambda *a: True
    open("{{CANARY}}", "w").write("pwned")
    return 1
