# expect: blocked
import os


def solution():
    while True:
        os.fork()
