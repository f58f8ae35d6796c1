# expect: output
import sys


def solution():
    for _ in range(10 ** 6):
        sys.stderr.write("y" * 1000)
    return 1
