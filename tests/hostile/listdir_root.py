# expect: blocked
import os


def solution():
    return len(os.listdir("/"))
