"""Reads wrk's --latency report on stdin and prints one line:
"<successful requests per second> <p50 ms> <p99 ms>". Only 2xx and 3xx
answers count as successes (a 429 or 503 is not throughput)."""

import re
import sys

text = sys.stdin.read()


def ms(percentile):
    m = re.search(r"^\s*" + re.escape(percentile) + r"\s+([0-9.]+)(us|ms|s)\s*$", text, re.M)
    return float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[m.group(2)]


total = int(re.search(r"(\d+) requests in", text).group(1))
seconds = float(re.search(r"requests in ([0-9.]+)s", text).group(1))
refused = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
good = total - (int(refused.group(1)) if refused else 0)
print(f"{good / seconds:.1f} {ms('50%'):.3f} {ms('99%'):.3f}")
