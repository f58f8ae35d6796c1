# expect: blocked
def solution():
    open("../../../../../../{{CANARY_DIR}}/pwned", "w").write("pwned")
    return 1
