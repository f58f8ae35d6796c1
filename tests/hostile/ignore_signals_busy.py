# expect: cpu timeout
import signal


def solution():
    for sig in (signal.SIGALRM, signal.SIGTERM, signal.SIGXCPU):
        signal.signal(sig, lambda *a: None)
    n = 0
    while True:
        n += 1
