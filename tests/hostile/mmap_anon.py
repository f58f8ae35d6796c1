# expect: blocked
import mmap


def solution():
    m = mmap.mmap(-1, 1 << 30)
    return len(m)
