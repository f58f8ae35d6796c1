# expect: blocked
def solution():
    return len(open("/etc/passwd").read())
