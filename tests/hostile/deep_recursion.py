# expect: exception
def down(n):
    return down(n + 1) + 1


def solution():
    return down(0)
