# expect: blocked
import os


def solution():
    return os.popen("cat /etc/passwd").read()
