"""The ticket office's one task: a clerk sells a ticket, which takes a few seconds.

The app uses the default store (BAOZI_URL, else sqlite:///baozi.db in this folder), so the site
(office.py), the worker and `baozi serve` all see the same orders.
"""

import os
import time
import zlib

import baozi

app = baozi.App()
SECONDS = float(os.environ.get("TICKET_SECONDS", "3"))  # how long one sale takes


@app.task(name="sell_ticket")
def sell_ticket(name: str, train: str) -> dict[str, str]:
    time.sleep(SECONDS)  # the clerk at work: checking the timetable, printing the ticket
    number = zlib.crc32(baozi.current_job().id.encode())
    seat = f"{number % 12 + 1}{'ABCD'[number // 12 % 4]}"
    return {"name": name, "train": train, "seat": seat}
