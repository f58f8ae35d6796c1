# expect: blocked
import os


def solution():
    os.truncate("{{CANARY}}", 0)
    return 1
