"""Follow-mode latency: events written one at a time into log-append, timed
until log-tail --follow prints them (fsync included). Prints percentiles."""
import json, shutil, subprocess, sys, threading, time

bin_dir, log = sys.argv[1], sys.argv[2]
shutil.rmtree(log, ignore_errors=True)
subprocess.run([f"{bin_dir}/log-append", log], input=b"", check=True)
tail = subprocess.Popen([f"{bin_dir}/log-tail", log, "--follow", "--from", "end"], stdout=subprocess.PIPE)
append = subprocess.Popen([f"{bin_dir}/log-append", log], stdin=subprocess.PIPE)
time.sleep(0.3)
N = 2000
latencies = []

def read():
    for _ in range(N):
        line = tail.stdout.readline()
        latencies.append(time.monotonic_ns() - json.loads(line)["sent"])

reader = threading.Thread(target=read)
reader.start()
for i in range(N):
    append.stdin.write(b'{"schema":"iglu:com.nile/ping/jsonschema/1-0-0","data":{},"sent":%d}\n' % time.monotonic_ns())
    append.stdin.flush()
    time.sleep(0.002)
reader.join(timeout=30)
append.stdin.close(); append.wait(); tail.kill()
latencies.sort()
ms = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] / 1e6
print(f"follow latency over {len(latencies)} events (append + fsync + tail): "
      f"p50 {ms(0.50):.1f} ms, p99 {ms(0.99):.1f} ms, max {latencies[-1] / 1e6:.1f} ms")
