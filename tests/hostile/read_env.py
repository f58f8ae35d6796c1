# expect: ok
# check: no_secret
import os


def solution():
    return repr(sorted(os.environ.items()))
