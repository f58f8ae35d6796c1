# expect: blocked exception
# RLIMIT_NPROC=0 makes the kernel refuse the thread ("can't start new thread").
import _thread


def spin():
    while True:
        pass


def solution():
    for _ in range(1000):
        _thread.start_new_thread(spin, ())
    return 1
