# expect: blocked
import os
import signal


def solution():
    os.kill(os.getppid(), signal.SIGKILL)
    return 1
