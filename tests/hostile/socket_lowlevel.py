# expect: blocked
def solution():
    _socket = __import__("_socket")
    s = _socket.socket()
    s.connect(("127.0.0.1", 80))
    return 1
