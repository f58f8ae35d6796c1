# expect: ok blocked
# A path object that names the temp dir on the first __fspath__ call and the canary on the next:
# open() converts it once, so the write lands in the temp dir (the host check shows the canary intact).
import os


class Shifty:
    calls = 0

    def __fspath__(self):
        Shifty.calls += 1
        return os.getcwd() + "/ok.txt" if Shifty.calls == 1 else "{{CANARY}}"


def solution():
    open(Shifty(), "w").write("pwned")
    return 1
