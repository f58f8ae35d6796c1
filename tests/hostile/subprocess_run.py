# expect: blocked
import subprocess


def solution():
    subprocess.run(["touch", "{{CANARY_DIR}}/pwned"])
    return 1
