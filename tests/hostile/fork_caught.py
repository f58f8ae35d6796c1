# expect: blocked
# A program that hides the refusal and returns a number still counts as blocked.
import os


def solution():
    try:
        os.fork()
    except Exception:
        pass
    return 42
