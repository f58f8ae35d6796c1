# expect: blocked
def harmless():
    return 1


def solution():
    harmless.__code__ = (lambda: __import__("os").system("touch {{CANARY_DIR}}/pwned")).__code__
    return harmless()
