# expect: blocked
import os


def solution():
    os.symlink("{{CANARY}}", "link")
    open("link", "w").write("pwned")
    return 1
