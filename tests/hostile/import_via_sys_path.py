# expect: blocked
import sys


def solution():
    sys.path.insert(0, "{{REPO}}")
    import generators.templates
    return 1
