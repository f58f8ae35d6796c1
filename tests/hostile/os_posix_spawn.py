# expect: blocked
import os


def solution():
    os.posix_spawn("/bin/touch", ["touch", "{{CANARY_DIR}}/pwned"], {})
    return 1
