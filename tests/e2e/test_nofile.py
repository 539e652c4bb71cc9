"""The open-file limit at start-up: salesd raises its soft RLIMIT_NOFILE
to what [server] max_connections needs, up to the hard limit, and says so
with the numbers when the hard limit is too low.
"""
import re
import resource

from conftest import Server


def limits(pid):
    """(soft, hard) open files of a running process, from /proc."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no open-file limit in /proc/%d/limits" % pid)


def start_limited(tmp_path, conns, soft, hard):
    s = Server(tmp_path, [], {"server": {"max_connections": conns}})
    s.preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                           (soft, hard))
    return s.start()


def test_soft_limit_raised_for_max_connections(tmp_path):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    hard = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    s = start_limited(tmp_path, 3000, 256, hard)
    try:
        assert limits(s.proc.pid) == (3000 + 64, hard)
        assert "open file" not in s.log()
        assert s.get("/health")[0] == 200
    finally:
        s.stop()


def test_hard_limit_too_low_warns_with_numbers(tmp_path):
    s = start_limited(tmp_path, 5000, 256, 1024)
    try:
        assert limits(s.proc.pid) == (1024, 1024)
        m = re.search(r"max_connections 5000 needs (\d+) open files, the "
                      r"hard limit is 1024: at most about (\d+) connections",
                      s.log())
        assert m, s.log()
        assert m.groups() == ("5064", "960")
        assert s.get("/health")[0] == 200
    finally:
        s.stop()


def test_enough_already_left_alone(tmp_path):
    s = start_limited(tmp_path, 100, 2000, 2000)
    try:
        assert limits(s.proc.pid) == (2000, 2000)
    finally:
        s.stop()
