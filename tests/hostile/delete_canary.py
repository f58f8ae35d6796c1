# expect: blocked
import os


def solution():
    os.remove("{{CANARY}}")
    return 1
