# expect: blocked
import os


def solution():
    os.system("touch {{CANARY_DIR}}/pwned")
    return 1
