# expect: blocked
# Frames lead up to the worker's own namespace; what is found there is still under the same hook.
import sys


def solution():
    frame = sys._getframe()
    while frame.f_back is not None:
        frame = frame.f_back
    found = frame.f_globals
    found["os"].system("touch {{CANARY_DIR}}/pwned")
    return 1
