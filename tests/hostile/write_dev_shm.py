# expect: blocked
def solution():
    open("/dev/shm/tinyschool-pwned", "w").write("pwned")
    return 1
