# expect: blocked
def solution():
    try:
        raise ValueError
    except ValueError as e:
        frame = e.__traceback__.tb_frame
    while frame.f_back is not None:
        frame = frame.f_back
    return len(frame.f_locals)
