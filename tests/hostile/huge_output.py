# expect: output
def solution():
    while True:
        print("x" * 10000)
