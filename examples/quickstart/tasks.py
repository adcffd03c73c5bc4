"""A first baozi app: two tasks on the default store (BAOZI_URL, else sqlite:///baozi.db here)."""

import time

import baozi

app = baozi.App()


@app.task(retries=2, retry_backoff=0.2)
def steam(bun: str, minutes: int) -> str:
    """Pretend to steam a bun; report progress as it goes."""
    job = baozi.current_job()
    for minute in range(minutes):
        time.sleep(0.1)
        job.set_progress((minute + 1) / minutes, f"minute {minute + 1} of {minutes}")
    return f"{bun}, steamed for {minutes} minutes"


@app.task(priority=-1)  # served before steam() jobs that wait in the same queue
def taste(bun: str) -> str:
    return f"{bun}: delicious"
