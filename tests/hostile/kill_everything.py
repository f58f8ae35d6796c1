# expect: blocked
import os
import signal


def solution():
    os.kill(-1, signal.SIGKILL)
    return 1
