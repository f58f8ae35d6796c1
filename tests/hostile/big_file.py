# expect: exception blocked
# Writing in its own temp dir is allowed, but not past the file size limit (RLIMIT_FSIZE).
def solution():
    with open("big.bin", "wb") as f:
        for _ in range(200):
            f.write(b"x" * (1 << 20))
    return 1
