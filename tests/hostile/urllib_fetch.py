# expect: blocked
import urllib.request


def solution():
    return len(urllib.request.urlopen("http://example.com").read())
