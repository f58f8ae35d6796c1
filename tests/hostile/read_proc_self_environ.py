# expect: blocked
def solution():
    return open("/proc/self/environ", "rb").read().decode()
