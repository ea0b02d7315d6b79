"""Named fault points for the fault-injection suite (tests/faults): ``DCF_FAULT=<stage>`` kills this process with
SIGKILL when it reaches ``faultpoint(<stage>)``; ``DCF_FAULT=<stage>:enospc`` raises "No space left on device"
there instead. Unset (always, outside tests) a fault point costs one dictionary look-up."""

from __future__ import annotations

import errno
import os
import signal

STAGES = (
    "startup",
    "discovery",
    "reading",
    "staging_copy",
    "loading",
    "checks",
    "version_link",
    "rename",
    "after_rename",
)


def faultpoint(stage: str) -> None:
    spec = os.environ.get("DCF_FAULT")
    if not spec:
        return
    name, _, action = spec.partition(":")
    if name != stage:
        return
    if action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    os.kill(os.getpid(), signal.SIGKILL)
