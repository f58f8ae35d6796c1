# expect: blocked
def solution():
    with open("{{CANARY}}", "w") as f:
        f.write("pwned")
    return 1
