# expect: blocked
import socket


def solution():
    s = socket.create_connection(("127.0.0.1", 22), timeout=1)
    return 1
