# expect: blocked
def solution():
    import corpora
    return len(dir(corpora))
