# expect: blocked
import os


def solution():
    os.rename("{{CANARY}}", "{{CANARY_DIR}}/moved")
    return 1
