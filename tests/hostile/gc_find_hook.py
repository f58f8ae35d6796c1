# expect: blocked
import gc


def solution():
    for obj in gc.get_objects():
        if callable(obj) and getattr(obj, "__name__", "") == "hook":
            obj.__closure__[0].cell_contents = "/"
    return 1
