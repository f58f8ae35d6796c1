# expect: blocked
def solution():
    return open("/proc/{{HOST_PID}}/cmdline", "rb").read().decode()
