# expect: blocked
import io


def solution():
    with io.open("{{CANARY}}", "a") as f:
        f.write("pwned")
    return 1
