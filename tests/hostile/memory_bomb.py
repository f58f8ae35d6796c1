# expect: memory
def solution():
    blob = "a" * (10 ** 10)
    return len(blob)
