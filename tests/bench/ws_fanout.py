"""WebSocket fan-out load client for tests/bench/run.

Connects N clients to salesd, counts the "newOrder" (and
"updateAnalytics") messages each receives for a bounded time, and prints
one line "RESULT {json}".  Clients the server closes (e.g. 1008 for not
keeping up) are counted, not reconnected.

    /usr/bin/python3 ws_fanout.py URL CLIENTS SECONDS
"""
import asyncio
import json
import sys
import time

import websockets


async def client(url, seconds, stats, ready):
    try:
        async with websockets.connect(url, max_size=2 ** 20,
                                      max_queue=None) as ws:
            ready.append(1)
            end = time.time() + seconds
            while True:
                left = end - time.time()
                if left <= 0:
                    return
                try:
                    text = await asyncio.wait_for(ws.recv(), left)
                except asyncio.TimeoutError:
                    return
                if '"type":"newOrder"' in text[:32]:
                    stats["newOrder"] += 1
                elif '"type":"updateAnalytics"' in text[:32]:
                    stats["updateAnalytics"] += 1
    except websockets.ConnectionClosed as e:
        stats["closed"] += 1
        stats["close_codes"][str(e.code)] = \
            stats["close_codes"].get(str(e.code), 0) + 1
    except OSError:
        stats["connect_failed"] += 1


async def main(url, n, seconds):
    stats = {"newOrder": 0, "updateAnalytics": 0, "closed": 0,
             "connect_failed": 0, "close_codes": {}}
    ready = []
    t0 = time.time()
    tasks = [asyncio.create_task(client(url, seconds, stats, ready))
             for _ in range(n)]
    await asyncio.wait(tasks, timeout=seconds + 10)
    stats["clients"] = n
    stats["connected"] = len(ready)
    stats["seconds"] = round(time.time() - t0, 2)
    print("RESULT " + json.dumps(stats), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
