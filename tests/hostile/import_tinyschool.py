# expect: blocked
import tinyschool


def solution():
    return 1
