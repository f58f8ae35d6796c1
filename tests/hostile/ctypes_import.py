# expect: blocked
import ctypes


def solution():
    libc = ctypes.CDLL(None)
    libc.system(b"touch {{CANARY_DIR}}/pwned")
    return 1
