"""The sandbox worker: a warm interpreter that forks one short-lived child per solution.

This file is never imported by the project. `filters.sandbox` starts it as
`[unshare --net] python -I -S -c <this source>` with an empty environment, so it sees only the
standard library (no site-packages, no project on sys.path, no PYTHON* variables, no secrets) and,
where the host allows it, lives in a network namespace with no interfaces.

Protocol on stdin/stdout: 4-byte big-endian length + JSON, one job in, one result out.
    job    {"code": str, "entry": "solution", "limits": {...}}
    result {"status": ..., "number": ..., "value": ..., "error": ..., "runtime_s": ..., ...}

For every job the worker forks a child which, before running a byte of the solution:
  * points fds 0/1/2 at /dev/null and closes every other fd but its result pipe;
  * moves into a fresh temporary directory (deleted by the worker afterwards);
  * sets kernel limits: RLIMIT_CPU (soft, then SIGKILL at hard = soft + 1 s), RLIMIT_AS (memory),
    RLIMIT_FSIZE (file and output size), RLIMIT_NPROC = 0 (no processes or threads), RLIMIT_NOFILE,
    RLIMIT_CORE = 0;
  * drops to the `nobody` user when started as root (so the kernel, not Python, refuses writes to
    the host's files, signals to its processes, and ptrace);
  * installs an audit hook (PEP 578) that refuses process creation, sockets, ctypes, signals to
    other processes, frame/gc introspection, imports outside a small allowlist, and any file
    access outside the temporary directory;
  * replaces sys.stdout/sys.stderr by writers that stop the program past the output cap.
The worker (trusted, no hook) enforces the wall-clock limit with SIGKILL on the child's process.
Python-level hooks alone are not a security boundary; the kernel limits above are what still
hold if a program gets past the hook.
"""
import builtins
import json
import numbers
import os
import posix
import resource
import select
import shutil
import signal
import struct
import sys
import tempfile
import time

# Modules a solution may import. All are imported here, before any fork, so that a child running as
# `nobody` (which may not be able to read the standard library's directory) still has them.
ALLOWED_IMPORTS = (
    "math", "cmath", "fractions", "decimal", "numbers", "statistics", "datetime", "_strptime", "time",
    "calendar", "itertools", "functools", "collections", "operator", "random", "re", "string",
    "heapq", "bisect", "copy", "typing", "dataclasses", "enum",
)
for _m in ALLOWED_IMPORTS:
    __import__(_m)
import collections.abc  # noqa: E402,F401

BLOCKED_EVENTS = frozenset({
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.startfile",
    "subprocess.Popen", "pty.spawn", "os.kill", "os.killpg", "signal.pthread_kill",
    "_thread.start_new_thread", "sys.addaudithook", "sys.settrace", "sys.setprofile",
    "sys._current_frames", "sys._current_exceptions", "gc.get_objects",
    "gc.get_referrers", "gc.get_referents", "function.__new__", "code.__new__",
    "resource.setrlimit",
    "resource.prlimit", "os.symlink", "os.link", "os.chown", "os.lchown", "os.chroot", "os.setxattr",
    "os.removexattr", "os.mknod", "os.mkfifo", "webbrowser.open", "urllib.Request",
    "http.client.connect", "syslog.openlog", "mmap.__new__", "fcntl.ioctl", "cpython.remote_debugger_script",
    "sys.remote_exec", "socket.__new__", "os.add_dll_directory",
})
BLOCKED_PREFIXES = ("socket.", "ctypes.", "_ctypes.", "winreg.", "msvcrt.", "os.exec", "os.spawn",
                    "os.posix_spawn", "ftplib.", "smtplib.", "nntplib.", "poplib.", "imaplib.", "telnetlib.")
# events whose first argument is a path that must lie inside the temporary directory
PATH_EVENTS = frozenset({
    "os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.truncate", "os.utime", "os.chmod",
    "os.chflags", "os.listdir", "os.scandir", "os.listxattr", "os.getxattr", "shutil.rmtree",
    "shutil.copyfile", "shutil.copymode", "shutil.copystat", "shutil.copytree", "shutil.move",
    "shutil.chown", "shutil.make_archive", "shutil.unpack_archive", "glob.glob", "glob.glob/2",
    "tempfile.mkstemp", "tempfile.mkdtemp", "os.chdir", "pathlib.Path.glob", "pathlib.Path.rglob",
})

NOBODY = 65534
RESULT_CAP = 1 << 16


class OutputLimitExceeded(BaseException):
    """Raised by the capped stdout/stderr; a BaseException so `except Exception` does not hide it."""


class CappedWriter:
    def __init__(self, cap, state):
        self._cap = cap
        self._state = state

    def write(self, s):
        s = str(s)
        self._state["out"] += len(s)
        if self._state["out"] > self._cap:
            self._state["output_exceeded"] = True
            raise OutputLimitExceeded(f"output over {self._cap} characters")
        if len(self._state["head"]) < 2000:
            self._state["head"] += s[: 2000 - len(self._state["head"])]
        return len(s)

    def flush(self):
        pass

    def isatty(self):
        return False

    def writable(self):
        return True


def _make_hook(tmpdir, violations, report_fd):
    """The audit hook. It may run while the solution has monkeypatched anything written in Python
    (os.path, builtins...), so it relies only on what it captured here: C functions, exact str/bytes
    paths (a str subclass or PathLike could answer differently when open() converts it again) and a
    lexical normalisation (symlinks cannot be made: os.symlink is refused)."""
    tmp = os.path.realpath(tmpdir)
    tmp_slash = tmp + "/"
    getcwd = posix.getcwd  # C function: unaffected by `os.getcwd = ...`
    write = posix.write
    _type, _str, _bytes, _int, _len, _perm = type, str, bytes, int, len, PermissionError
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    allowed = frozenset(ALLOWED_IMPORTS)
    blocked, prefixes, path_events = BLOCKED_EVENTS, BLOCKED_PREFIXES, PATH_EVENTS
    opened = [0]

    def normalised(p):
        if _type(p) is _bytes:
            p = p.decode("utf-8", "surrogateescape")
        if _type(p) is not _str:
            return None
        if not p.startswith("/"):
            p = getcwd() + "/" + p
        parts = []
        for seg in p.split("/"):
            if seg == "" or seg == ".":
                continue
            if seg == "..":
                if parts:
                    parts.pop()
            else:
                parts.append(seg)
        return "/" + "/".join(parts)

    def inside(p):
        n = normalised(p)
        return n is not None and (n == tmp or n.startswith(tmp_slash))

    def shown(p):
        return p[:200] if _type(p) is _str else _type(p).__name__

    def refuse(event, what):
        msg = "sandbox: " + event + " refused (" + what + ")"
        if _len(violations) < 20:
            violations.append(msg)
            try:  # told to the worker at once, so a program that then wrecks its own runner is still `blocked`
                write(report_fd, ("V:" + msg.replace("\n", " ") + "\n").encode("utf-8", "replace"))
            except OSError:
                pass
        raise _perm(msg)

    def hook(event, args):
        if event in blocked or event.startswith(prefixes):
            refuse(event, "not allowed")
        if event == "object.__setattr__" or event == "object.__delattr__":
            if _len(args) > 1 and args[1] == "__code__":  # swapping a function's code object
                refuse(event, "__code__")
        elif event == "import":
            name = args[0]
            if _type(name) is not _str or name.split(".")[0] not in allowed:
                refuse(event, shown(name))
        elif event == "open":
            path = args[0]
            if _type(path) is _int:
                return
            if not inside(path):
                refuse(event, shown(path))
            mode = args[1]
            flags = args[2] if _len(args) > 2 else 0
            if mode is None:
                writes = _type(flags) is not _int or bool(flags & write_flags)
            else:
                writes = _type(mode) is not _str or "w" in mode or "a" in mode or "x" in mode or "+" in mode
            if writes:
                opened[0] += 1
                if opened[0] > 32:
                    refuse(event, "too many files")
        elif event in path_events or event == "os.walk" or event == "os.fwalk":
            for a in args[:2]:
                if a is not None and _type(a) is not _int and not inside(a):
                    refuse(event, shown(a))

    return hook


def _describe(value):
    """(number or None, value type, short repr, exact text or None, too large for a float) of a returned
    value. A rational (an int, a Fraction) also gets its exact decimal text (`n` or `n/d`; Python prints
    at most 4,300 digits); one beyond the float range is `too_large`, still a finite number."""
    t = type(value).__name__
    try:
        r = repr(value)
    except BaseException as e:  # a hostile __repr__
        r = f"<repr failed: {type(e).__name__}>"
    r = r[:200]
    number, exact, too_large = None, None, False
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            too_large = isinstance(value, numbers.Rational)  # finite, just not a float
        except (ValueError, TypeError):
            number = None
        if isinstance(value, numbers.Rational):
            try:
                exact = str(int(value)) if isinstance(value, numbers.Integral) else \
                    f"{int(value.numerator)}/{int(value.denominator)}"
            except (ValueError, TypeError, OverflowError):  # more digits than Python prints
                exact = None
    return number, t, r, exact, too_large


def _child(job, tmpdir, wfd):
    """Runs in the forked child: lock it down, run the solution, write the result, exit."""
    limits = job["limits"]
    t_start = time.perf_counter()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM, signal.SIGXCPU, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # oversize writes fail with EFBIG instead
    os.dup2(wfd, 3)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(4, 1 << 16)
    wfd = 3
    os.chdir(tmpdir)
    cpu = max(1, int(limits["cpu_s"] + 0.999))
    mem = int(limits["memory_mb"]) << 20
    fsize = int(limits["file_bytes"])
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_NOFILE, (16, 16))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    if os.getuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    violations = []
    state = {"out": 0, "head": "", "output_exceeded": False}
    # drop references to the worker's own machinery before the solution can look around
    for name in ("ctypes", "_ctypes", "subprocess", "_posixsubprocess", "socket", "_socket", "select", "shutil"):
        sys.modules.pop(name, None)
    sys.modules.pop("__main__", None)  # the worker's own namespace (the running code keeps its reference)
    sys.stdout = sys.__stdout__ = CappedWriter(int(limits["output_bytes"]), state)
    sys.stderr = sys.__stderr__ = CappedWriter(int(limits["output_bytes"]), state)
    sys.stdin = sys.__stdin__ = None
    saved_builtins = dict(builtins.__dict__)
    sys.addaudithook(_make_hook(tmpdir, violations, wfd))

    res = {"status": "ok", "number": None, "value": None, "value_type": None, "error": None}
    entry = job.get("entry") or "solution"
    t0 = time.perf_counter()
    try:
        code = compile(job["code"], "<solution>", "exec")
        g = {"__name__": "__solution__", "__builtins__": __builtins__}
        exec(code, g)
        fn = g.get(entry)
        if not callable(fn):
            res["status"] = "no_solution"
            res["error"] = f"the code defines no function {entry}()"
        else:
            value = fn()
            res["number"], res["value_type"], res["value"], res["exact"], res["too_large"] = _describe(value)
    except SyntaxError as e:
        res["status"] = "syntax"
        res["error"] = f"SyntaxError: {e.msg} (line {e.lineno})"
    except MemoryError:
        res["status"] = "memory"
        res["error"] = "MemoryError: memory limit reached"
    except OutputLimitExceeded as e:
        res["status"] = "output"
        res["error"] = f"output limit: {e}"
    except BaseException as e:  # the program's own exception, whatever it is
        res["status"] = "exception"
        try:
            res["error"] = f"{type(e).__name__}: {str(e)[:300]}"
        except BaseException:
            res["error"] = type(e).__name__
    builtins.__dict__.clear()  # the solution may have replaced builtins the code below relies on
    builtins.__dict__.update(saved_builtins)
    res["runtime_s"] = round(time.perf_counter() - t0, 6)
    res["setup_s"] = round(t0 - t_start, 6)
    if state["output_exceeded"] and res["status"] not in ("memory",):
        res["status"] = "output"
        res["error"] = res["error"] or "output limit"
    if violations:
        res["status"] = "blocked"
        res["error"] = violations[0]
        res["violations"] = violations[:5]
    res["stdout"] = state["head"][:500]
    try:
        data = json.dumps(res).encode()
    except BaseException:
        data = json.dumps({"status": "crash", "error": "result not serialisable"}).encode()
    try:
        posix.write(wfd, b"R:" + data[:RESULT_CAP] + b"\n")
    except BaseException:
        pass
    os._exit(0)


def _read_exact(fd, n):
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_job(job):
    limits = job["limits"]
    tmpdir = tempfile.mkdtemp(prefix="tinyschool-sbx-")
    try:
        if os.getuid() == 0:
            os.chown(tmpdir, NOBODY, NOBODY)
        rfd, wfd = os.pipe()
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(rfd)
                _child(job, tmpdir, wfd)
            finally:
                os._exit(70)
        os.close(wfd)
        deadline = t0 + float(limits["wall_s"])
        data = b""
        killed = False
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                _kill(pid)
                killed = True
                break
            r, _, _ = select.select([rfd], [], [], left)
            if r:
                chunk = os.read(rfd, RESULT_CAP)
                if not chunk:
                    break  # the child closed its end: it has exited
                if len(data) < RESULT_CAP:
                    data += chunk
        os.close(rfd)
        _, status, ru = os.wait4(pid, 0)
        wall = time.monotonic() - t0
        cpu_used = ru.ru_utime + ru.ru_stime
        res = None
        violations = []
        for line in data[:RESULT_CAP].decode("utf-8", "replace").splitlines():
            if line.startswith("V:"):
                violations.append(line[2:300])
            elif line.startswith("R:") and not killed and os.WIFEXITED(status):
                try:
                    res = json.loads(line[2:])
                except ValueError:
                    res = None
                if not isinstance(res, dict) or "status" not in res:
                    res = None
        if res is None:
            if killed:
                res = {"status": "timeout", "error": f"wall-clock limit of {limits['wall_s']} s reached (killed)"}
            elif os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
                if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu_used >= float(limits["cpu_s"]) * 0.9):
                    res = {"status": "cpu", "error": f"CPU time limit of {limits['cpu_s']} s reached"}
                else:
                    res = {"status": "crash", "error": f"killed by signal {signal.Signals(sig).name}"}
            else:
                code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
                res = {"status": "crash", "error": f"exited with status {code} without a result"}
            res["runtime_s"] = round(wall, 6)
        if violations:  # whatever the child said or failed to say
            res.update(status="blocked", error=violations[0], violations=violations[:5])
        res["wall_s"] = round(wall, 6)
        res["cpu_s"] = round(cpu_used, 6)
        return res
    finally:
        try:
            os.rmdir(tmpdir)  # the usual case: the solution wrote nothing
        except OSError:
            shutil.rmtree(tmpdir, ignore_errors=True)


def main():
    inp, out = sys.stdin.buffer.raw, sys.stdout.buffer.raw
    hello = {"pid": os.getpid(), "uid": os.getuid(), "netns": os.environ.get("TINYSCHOOL_SBX_NETNS", "0") == "1"}
    os.environ.pop("TINYSCHOOL_SBX_NETNS", None)
    msg = json.dumps(hello).encode()
    out.write(struct.pack(">I", len(msg)) + msg)
    while True:
        head = _read_exact(inp.fileno(), 4)
        if head is None:
            return
        (n,) = struct.unpack(">I", head)
        body = _read_exact(inp.fileno(), n)
        if body is None:
            return
        try:
            res = run_job(json.loads(body))
        except Exception as e:  # the worker's own failure: report it, keep serving
            res = {"status": "crash", "error": f"sandbox worker error: {type(e).__name__}: {e}"}
        msg = json.dumps(res).encode()
        out.write(struct.pack(">I", len(msg)) + msg)


if __name__ == "__main__":
    main()
