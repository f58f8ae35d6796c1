# expect: blocked
def solution():
    return open("/proc/{{HOST_PID}}/environ", "rb").read().decode()
