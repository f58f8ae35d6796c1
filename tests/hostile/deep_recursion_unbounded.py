# expect: crash memory exception cpu timeout
# Raising the recursion limit lets CPython overflow the C stack: the child dies, the host does not.
import sys


def down(n):
    return down(n + 1) + 1


def solution():
    sys.setrecursionlimit(10 ** 8)
    return down(0)
