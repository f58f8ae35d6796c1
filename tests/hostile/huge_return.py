# expect: ok
# check: value_capped
def solution():
    return "z" * (10 ** 7)
