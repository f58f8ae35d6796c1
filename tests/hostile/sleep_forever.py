# expect: timeout
import time


def solution():
    time.sleep(1000)
    return 1
