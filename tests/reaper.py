# reaper.py CMD [ARG...]: runs CMD as a child subreaper does (conmon, containerd's shim, an
# init): whatever is orphaned below it is reaped at once, and it exits with CMD's status.
import ctypes
import os
import sys

ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
while True:
    reaped, status = os.wait()
    if reaped == pid:
        sys.exit(os.waitstatus_to_exitcode(status))
