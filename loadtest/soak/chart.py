#!/usr/bin/python3
"""The soak's chart: offer latency, message latency and the RSS of every process over the run,
with each fault marked, from the time series warmline-soak writes (one JSON object a line:
ev offer|msg with ms, ev rss with name and kib, ev fault with kind, target and until).

usage: chart.py SERIES.jsonl OUT.png [RESULT.json]
Needs Debian's python3-matplotlib (scripts/lib.sh installs it)."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"kill_matchmaker": "tab:red", "kill_relay": "tab:orange",
           "redis_stall": "tab:purple", "failover": "tab:brown"}


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    offers, msgs, rss, faults = [], [], {}, []
    with open(sys.argv[1]) as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue  # a line cut short by a kill
            ev = e.get("ev")
            if ev == "offer":
                offers.append((e["t"], e["ms"]))
            elif ev == "msg":
                msgs.append((e["t"], e["ms"]))
            elif ev == "rss":
                rss.setdefault(e["name"], []).append((e["t"], e["kib"] / 1024))
            elif ev == "fault":
                faults.append(e)
    title = "Warmline soak"
    if len(sys.argv) > 3:
        try:
            with open(sys.argv[3]) as f:
                r = json.loads(f.read().strip().splitlines()[-1])
            title += (f": {r['minutes']} min, {r['matches']} matches, {r['messages']} messages, "
                      f"{r['faults']} faults, lost {r['lost_acked_messages']}, dup {r['duplicates']}, "
                      f"wedged {r['wedged_chats']}, dropped {r['dropped_waiting_seekers']}")
        except (OSError, ValueError, KeyError, IndexError):
            pass

    fig, axes = plt.subplots(3, 1, figsize=(12, 10), sharex=True)
    for ax, points, label in ((axes[0], offers, "offer latency (ms)"), (axes[1], msgs, "message latency (ms)")):
        if points:
            ax.scatter([p[0] for p in points], [p[1] for p in points], s=6, alpha=0.6)
            ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    for name in sorted(rss):
        pts = rss[name]
        axes[2].plot([p[0] for p in pts], [p[1] for p in pts], label=name, linewidth=1)
    axes[2].set_ylabel("RSS (MiB)")
    axes[2].set_xlabel("seconds since the load started")
    axes[2].grid(True, alpha=0.3)
    if rss:
        axes[2].legend(fontsize="small", ncol=6, loc="upper left")
    seen = set()
    for fl in faults:
        colour = COLOURS.get(fl["kind"], "black")
        for ax in axes:
            ax.axvspan(fl["t"], max(fl["until"], fl["t"] + 0.2), color=colour, alpha=0.2)
        label = fl["kind"] if fl["kind"] not in seen else None
        seen.add(fl["kind"])
        axes[0].axvline(fl["t"], color=colour, linewidth=1, label=label)
    if faults:
        axes[0].legend(fontsize="small", loc="upper left")
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=90)
    print(f"chart: {sys.argv[2]}", file=sys.stderr)


if __name__ == "__main__":
    main()
