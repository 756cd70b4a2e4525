"""Host facts of ``pytest benchmarks`` (benchmarks/host.py) from fake /proc and cgroup files,
and the paper report's own outputs (smoke labels, an earlier run's charts cleared)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: `benchmarks`

from benchmarks import host
from benchmarks.host import Contention, CpuCounters, Memory

MEMINFO = "MemTotal:       24000000 kB\nMemFree:         1000000 kB\nMemAvailable:    5078125 kB\n"


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_memory_available_is_the_lower_of_meminfo_and_the_cgroup(tmp_path):
    meminfo = write(tmp_path / "meminfo", MEMINFO)
    cgroup = tmp_path / "cg"
    cgroup.mkdir()
    assert host.mem_available(meminfo, str(cgroup)) == Memory(5078125 * 1024, "MemAvailable")
    write(cgroup / "memory.max", "max\n")  # no limit
    write(cgroup / "memory.current", "1000\n")
    assert host.mem_available(meminfo, str(cgroup)) == Memory(5078125 * 1024, "MemAvailable")
    write(cgroup / "memory.max", "4000000000\n")
    write(cgroup / "memory.current", "1500000000\n")
    assert host.mem_available(meminfo, str(cgroup)) == Memory(2.5e9, "cgroup memory.max")
    assert host.mem_available(str(tmp_path / "absent"), str(tmp_path / "absent")) is None


def test_memory_skip_names_both_figures():
    m = Memory(5.2e9, "MemAvailable")
    assert host.memory_skip_reason(3.0e9, 1.0e9, m) is None
    assert host.memory_skip_reason(11.0e9, 1.0e9, m) == (
        "not enough memory: needs about 11.0 GB peak RSS (10.0 GB more than this process "
        "holds), 5.2 GB available (MemAvailable)"
    )
    assert host.memory_skip_reason(11.0e9, 1.0e9, None) is None  # unknown: run


def test_rss_and_peak_from_status(tmp_path):
    status = write(tmp_path / "status", "Name:\tpython\nVmHWM:\t 2000 kB\nVmRSS:\t 1500 kB\n")
    assert host.rss_bytes(status) == 1500 * 1024
    assert host.rss_bytes(status, "VmHWM") == 2000 * 1024
    assert host.rss_bytes(str(tmp_path / "absent")) is None
    assert host.reset_peak_rss(str(tmp_path / "no-such-dir" / "clear_refs")) is False
    assert host.reset_peak_rss(write(tmp_path / "clear_refs", "")) is True
    assert (tmp_path / "clear_refs").read_text() == "5"


def test_contention_from_pressure_and_steal(tmp_path):
    def counters(t: float, total_us: int, steal: int, idle: int):
        p = write(
            tmp_path / f"pressure{t}",
            f"some avg10=61.87 avg60=53.96 avg300=29.38 total={total_us}\n"
            "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        )
        s = write(tmp_path / f"stat{t}", f"cpu  700 0 80 {idle} 3 0 1 {steal} 0 0\ncpu0 1 2 3\n")
        return host.cpu_counters(t, p, s)

    a = counters(100.0, 1_000_000, 10, 216)
    b = counters(110.0, 5_500_000, 30, 1196)
    assert a == CpuCounters(100.0, 1_000_000.0, 10.0, 1010.0)
    c = host.contention(a, b)
    assert c == Contention(0.45, 0.02)
    assert c.loaded is True
    assert c.describe() == "CPU pressure 45% (some), steal 2%"
    quiet = Contention(0.03, 0.0)
    assert quiet.loaded is False


def test_contention_without_the_pressure_file_says_unknown(tmp_path):
    stat = write(tmp_path / "stat", "cpu  700 0 80 216 3 0 1 10 0 0\n")
    a = host.cpu_counters(1.0, str(tmp_path / "absent"), stat)
    b = host.cpu_counters(2.0, str(tmp_path / "absent"), stat)
    c = host.contention(a, b)
    assert c == Contention(None, None)  # no jiffies passed: steal unknown too
    assert c.loaded is None
    assert c.describe() == "CPU pressure unknown (no /proc/pressure/cpu)"
    assert Contention(None, 0.25).loaded is True
    assert Contention(0.05, None).worst(Contention(None, 0.3)) == Contention(0.05, 0.3)


def test_a_run_clears_the_earlier_runs_report_and_charts(tmp_path):
    from benchmarks.paper_report import clear_outputs

    for name in ("paper.md", "paper-fig1.png", "paper-fig3.png", "co2.json", "mine.png"):
        (tmp_path / name).write_text("old")
    removed = clear_outputs(str(tmp_path / "paper.md"))
    assert sorted(Path(p).name for p in removed) == ["paper-fig1.png", "paper-fig3.png", "paper.md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["co2.json", "mine.png"]


def test_smoke_report_says_smoke_first():
    from benchmarks.paper_report import render
    from benchmarks.paper_tables import SMOKE_TITLE
    from benchmarks.registry import Registry

    r = Registry()
    r.session.update(scale="smoke")
    lines, _ = render(r)
    assert lines[0] == f"**{SMOKE_TITLE}.**"
    assert lines[2] == "# Latent Pollution Model: this run beside the paper (smoke scale)"
    paper = Registry()
    paper.session.update(scale="paper")
    assert render(paper)[0][0] == "# Latent Pollution Model: this run beside the paper"
