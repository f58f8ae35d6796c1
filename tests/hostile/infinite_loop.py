# expect: cpu timeout
def solution():
    n = 0
    while True:
        n += 1
