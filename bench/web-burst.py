#!/usr/bin/env python3
"""bench/web-burst.py: how long the browser page takes to show a burst.

    bench/web-burst.py BINDIR [PRE] [BURST]

Starts BINDIR/chatserver (--store memory, --rate 0) on 127.0.0.1 port 0
and headless chromium (through chromedriver and python3-selenium), joins
the page as `viewer` in #perfq, has BINDIR/chatclient say PRE lines there
(default 1400) and waits until the page shows the last, then BURST more
(default 600). Prints how long the page took to show each, the page's
long tasks (PerformanceObserver) and the longest gap of a 100 ms timer
(how long the page stood still), and the connection's state at the end.
Stops what it started (by handle) and removes its data directory.
See BENCHMARKS.md, "The browser page under a burst".
"""
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

BIN = sys.argv[1]
PRE = int(sys.argv[2]) if len(sys.argv) > 2 else 1400
BURST = int(sys.argv[3]) if len(sys.argv) > 3 else 600
LAST = ('const t = [...document.querySelectorAll(".room-log[data-room=perfq] li.msg .text")];'
        ' return t.length ? t[t.length - 1].innerText : null')
WATCH = '''window._lt = [];
new PerformanceObserver(l => { for (const e of l.getEntries()) _lt.push(Math.round(e.duration)); })
  .observe({ type: "longtask" });
window._maxgap = 0; window._last = performance.now();
setInterval(() => { const n = performance.now(); _maxgap = Math.max(_maxgap, n - _last); _last = n; }, 100);'''

data = tempfile.mkdtemp(prefix='web-burst')
srv = subprocess.Popen([BIN + '/chatserver', '--listen', '127.0.0.1:0', '--data-dir', data,
                        '--store', 'memory', '--rate', '0', '--log-level', 'warn'],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
addr = re.search(r'listening on (\S+)', srv.stdout.readline()).group(1)
threading.Thread(target=lambda: [None for _ in srv.stdout], daemon=True).start()
opts = webdriver.ChromeOptions()
opts.binary_location = shutil.which('chromium') or '/usr/bin/chromium'
for a in ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
          '--window-size=1200,800']:
    opts.add_argument(a)
d = webdriver.Chrome(service=Service(shutil.which('chromedriver') or '/usr/bin/chromedriver'),
                     options=opts)


def say(n, tag):
    lines = ''.join(f'{tag} {k}\n' for k in range(1, n + 1))
    subprocess.run([BIN + '/chatclient', '--nick', 'bot' + tag, '--room', 'perfq', addr],
                   input=lines, text=True, capture_output=True, timeout=600)


def shown(text, limit=300):
    """Seconds until the page's last line in #perfq is `text`, or None."""
    t0 = time.time()
    while time.time() - t0 < limit:
        try:
            if d.execute_script(LAST) == text:
                return time.time() - t0
        except Exception:  # a page too busy to answer a script in time
            pass
        time.sleep(0.2)
    return None


def secs(t):
    return 'never' if t is None else f'{t:.1f} s'


try:
    d.get(f'http://{addr}/')
    time.sleep(0.5)
    nick = d.find_element(By.ID, 'nick')
    nick.clear()
    nick.send_keys('viewer')
    d.find_element(By.ID, 'join').click()
    time.sleep(1)
    box = d.find_element(By.ID, 'input')
    box.send_keys('/join perfq')
    box.send_keys(Keys.ENTER)
    time.sleep(1)
    say(PRE, 'pre')
    print(f'{PRE} lines shown {secs(shown(f"pre {PRE}"))} after they were sent')
    d.execute_script(WATCH)
    say(BURST, 'burst')
    t = shown(f'burst {BURST}')
    lt = d.execute_script('return _lt')
    print(f'then {BURST} more shown {secs(t)} after; long tasks {len(lt)}, '
          f'{sum(lt)} ms in all, longest {max(lt) if lt else 0} ms; '
          f'page stood still at most {d.execute_script("return _maxgap"):.0f} ms; '
          f'status {d.find_element(By.ID, "status").text!r}')
finally:
    d.quit()
    srv.kill()
    srv.wait()
    shutil.rmtree(data, ignore_errors=True)
