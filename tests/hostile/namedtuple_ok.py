# expect: ok
# Ordinary library features still work inside the sandbox (not every program here is hostile).
from collections import namedtuple
from dataclasses import dataclass
from enum import Enum


@dataclass
class Basket:
    apples: int
    pears: int


class Size(Enum):
    SMALL = 1
    BIG = 2


def solution():
    Point = namedtuple("Point", "x y")
    b = Basket(3, 4)
    return Point(b.apples, b.pears).x * Size.BIG.value
