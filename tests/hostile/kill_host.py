# expect: blocked
import os
import signal


def solution():
    os.kill({{HOST_PID}}, signal.SIGKILL)
    return 1
