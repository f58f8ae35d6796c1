# expect: blocked
def solution():
    open("{{CANARY_DIR}}/pwned", "x").write("pwned")
    return 1
