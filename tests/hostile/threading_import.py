# expect: blocked
import threading


def solution():
    t = threading.Thread(target=lambda: None)
    t.start()
    return 1
