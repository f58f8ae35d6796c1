# expect: blocked
def solution():
    _ctypes = __import__("_ctypes")
    return _ctypes.dlopen(None)
