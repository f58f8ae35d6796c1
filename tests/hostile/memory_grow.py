# expect: memory timeout
# (on a loaded machine the wall clock can run out before 256 MB are filled: contained either way)
def solution():
    chunks = []
    while True:
        chunks.append(bytearray(10 ** 6))
