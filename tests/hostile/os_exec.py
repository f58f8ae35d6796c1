# expect: blocked
import os


def solution():
    os.execv("/bin/sh", ["sh", "-c", "touch {{CANARY_DIR}}/pwned"])
