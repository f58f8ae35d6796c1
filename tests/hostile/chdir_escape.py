# expect: blocked
import os


def solution():
    os.chdir("{{CANARY_DIR}}")
    open("pwned", "w").write("pwned")
    return 1
