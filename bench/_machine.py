"""Memory and CPU of a process tree and of the machine, from /proc (Linux): what bench/load.py
and bench/scale.py sample while they run."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def proc_tree(root_pid: int) -> dict[int, int]:
    """pid -> parent pid of ``root_pid`` and all its descendants."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root_pid: parent.get(root_pid, 0)}, [root_pid]
    while frontier:
        p = frontier.pop()
        for child, pp in parent.items():
            if pp == p and child not in tree:
                tree[child] = p
                frontier.append(child)
    return tree


def mem_kb(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def cpu_ticks(pids) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total


def machine_ticks() -> tuple[int, int]:
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in cpu]
    idle = values[3] + values[4]
    return sum(values), idle


class Sampler(threading.Thread):
    """Peak memory of the server's processes, the machine's load, and the CPU others used."""

    def __init__(self, master_pid: int | None, every: float = 0.5):
        super().__init__(daemon=True)
        self.master, self.every, self.stop = master_pid, every, threading.Event()
        self.peak = {"workers_rss_mb": 0.0, "workers_pss_mb": 0.0, "all_rss_mb": 0.0, "all_pss_mb": 0.0}
        self.loads: list[float] = []
        self.max_workers = 0
        self.server_ticks = 0
        self._seen_ticks: dict[int, int] = {}

    def run(self):
        self.t0_machine = machine_ticks()
        while not self.stop.is_set():
            self.loads.append(float(Path("/proc/loadavg").read_text().split()[0]))
            if self.master:
                tree = proc_tree(self.master)
                workers = [p for p, pp in tree.items() if pp == self.master]
                self.max_workers = max(self.max_workers, len(workers))
                mem = {p: mem_kb(p) for p in tree}
                sums = {"workers_rss_mb": sum(mem[p][0] for p in workers), "workers_pss_mb": sum(mem[p][1] for p in workers),
                        "all_rss_mb": sum(m[0] for m in mem.values()), "all_pss_mb": sum(m[1] for m in mem.values())}
                for k, v in sums.items():
                    self.peak[k] = max(self.peak[k], round(v / 1024, 1))
                for p in tree:  # CPU time of every server process seen (workers, jobs)
                    self._seen_ticks[p] = cpu_ticks([p]) or self._seen_ticks.get(p, 0)
            self.stop.wait(self.every)
        self.t1_machine = machine_ticks()

    def cpu_split(self, t0_ticks: dict) -> dict:
        total = self.t1_machine[0] - self.t0_machine[0]
        busy = total - (self.t1_machine[1] - self.t0_machine[1])
        server = sum(v - t0_ticks.get(p, 0) for p, v in self._seen_ticks.items())
        cores = os.cpu_count() or 1
        return {"machine_busy_cores": round(cores * busy / max(total, 1), 2),
                "server_cores": round(cores * server / max(total, 1), 2),
                "others_cores": round(cores * max(busy - server, 0) / max(total, 1), 2)}
