"""A real single-node SLURM on this machine, from Debian's packages (slurm-wlm, munge), for the cluster tests.

`start()` writes a slurm.conf for this host, starts munged (if it is not running), slurmctld and slurmd, and
waits for the node to be idle; `stop()` ends the daemons it started. It needs root (slurmd runs jobs as
their users) and refuses to touch a slurm.conf it did not write, so it never disturbs a real cluster's.
The config goes to /etc/slurm/slurm.conf, the default path: the SLURM executor plugin's job step drops
SLURM_CONF from the environment of the `srun` it runs inside each job, so a config elsewhere is not found
there. Run this module to start a cluster by hand: `python tests/local_slurm.py start|stop`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CONF = Path("/etc/slurm/slurm.conf")
MARK = "# written by trtpipe's tests (tests/local_slurm.py); safe to delete"
STATE = Path("/tmp/trtpipe-slurm")
COMMANDS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
# Declared CPUs of the node: more than the machine has (config_overrides allows it), so that several
# small jobs of the tiny sweep run at once, as on a real cluster.
NODE_CPUS = 8


class SlurmUnavailable(RuntimeError):
    """Why a local SLURM cannot be started here (the tests skip with this reason)."""


@dataclass
class Cluster:
    node: str


def _conf(node: str) -> str:
    mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 - 1024
    return f"""{MARK}
ClusterName=trtpipe-test
SlurmctldHost={node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={STATE}/state
SlurmdSpoolDir={STATE}/spool
SlurmctldPidFile={STATE}/slurmctld.pid
SlurmdPidFile={STATE}/slurmd.pid
SlurmctldLogFile={STATE}/slurmctld.log
SlurmdLogFile={STATE}/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
# No cgroups in a container: track processes by their parent, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# No slurmdbd: job states come from squeue, which keeps finished jobs for MinJobAge seconds.
AccountingStorageType=accounting_storage/none
MinJobAge=3600
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
NodeName={node} NodeAddr=127.0.0.1 CPUs={NODE_CPUS} RealMemory={mem_mb} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=60)


def _munge_answers() -> bool:
    return _run("sh", "-c", "munge -n | unmunge", check=False).returncode == 0


def _start_munge() -> None:
    if _munge_answers():
        return  # already running
    user = pwd.getpwnam("munge")
    for folder in ("/run/munge", "/var/log/munge", "/var/lib/munge"):
        os.makedirs(folder, exist_ok=True)
        os.chown(folder, user.pw_uid, user.pw_gid)
    if not Path("/etc/munge/munge.key").exists():
        _run("runuser", "-u", "munge", "--", "mungekey", "--create")
    _run("runuser", "-u", "munge", "--", "munged")
    if not _munge_answers():
        raise SlurmUnavailable("munged started but does not answer (munge -n | unmunge failed)")


def start(timeout: float = 60) -> Cluster:
    missing = [c for c in COMMANDS if shutil.which(c) is None and not Path("/usr/sbin", c).exists()]
    if missing:
        raise SlurmUnavailable(f"SLURM is not installed here ({', '.join(missing)} missing); "
                               "fix: apt-get install slurm-wlm munge (.ci/run does)")
    if os.geteuid() != 0:
        raise SlurmUnavailable("starting slurmd needs root, and these tests run as an ordinary user")
    if CONF.exists() and MARK not in CONF.read_text():
        raise SlurmUnavailable(f"{CONF} exists and was not written by these tests; not touching a real cluster's config")
    stop()
    shutil.rmtree(STATE, ignore_errors=True)
    for sub in ("state", "spool"):
        (STATE / sub).mkdir(parents=True)
    node = socket.gethostname().split(".")[0]
    CONF.parent.mkdir(parents=True, exist_ok=True)
    CONF.write_text(_conf(node))
    _start_munge()
    for daemon in ("slurmctld", "slurmd"):
        proc = _run(daemon, check=False)
        if proc.returncode != 0:
            raise SlurmUnavailable(f"{daemon} did not start: {proc.stderr.strip() or proc.stdout.strip()}")
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = _run("sinfo", "--noheader", "--format=%T", check=False).stdout.strip()
        if state == "idle":
            return Cluster(node)
        time.sleep(0.5)
    log = (STATE / "slurmctld.log").read_text()[-2000:] if (STATE / "slurmctld.log").exists() else ""
    raise SlurmUnavailable(f"the SLURM node did not become idle within {timeout:.0f} s (state {state!r}); {log}")


def stop() -> None:
    """End the daemons a previous start() left running and remove its slurm.conf (munged stays: other tools may
    use it). A slurm.conf without a controller would cost every later Snakemake start about 9 s: the SLURM
    executor plugin runs `scontrol show config` when it is imported, which waits for the controller."""
    for daemon in ("slurmd", "slurmctld"):
        pid_file = STATE / f"{daemon}.pid"
        try:
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            continue
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
    if CONF.exists() and MARK in CONF.read_text():
        CONF.unlink()


if __name__ == "__main__":
    action = sys.argv[1] if len(sys.argv) > 1 else "start"
    if action == "start":
        print(f"SLURM up on node {start().node}; logs in {STATE}")
    else:
        stop()
