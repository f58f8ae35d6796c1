# expect: blocked
import os


def solution():
    for i in range(10000):
        os.close(os.open(f"f{i}", os.O_CREAT | os.O_WRONLY))
    return 1
