# expect: memory
def solution():
    chunks = []
    while True:
        chunks.append(bytearray(10 ** 6))
