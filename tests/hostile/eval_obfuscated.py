# expect: blocked
def solution():
    return eval("__import__('o' + 's').system('touch {{CANARY_DIR}}/pwned')")
