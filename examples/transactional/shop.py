"""Save orders and enqueue their confirmation e-mails atomically (see README.md).

BAOZI_URL names the PostgreSQL store; the orders go in the same database, schema ``shop``.
"""

import os
import sys

import sqlalchemy as sa

import baozi

URL = os.environ.get("BAOZI_URL", "postgresql://root@127.0.0.1:5432/test?schema=shop_jobs")
app = baozi.App(URL)

# SQLAlchemy on psycopg 3, to the store's database (without baozi's ?schema= option).
engine = sa.create_engine(URL.split("?")[0].replace("postgresql://", "postgresql+psycopg://", 1))
orders = sa.Table(
    "orders",
    sa.MetaData(schema=os.environ.get("SHOP_SCHEMA", "shop")),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("total", sa.Numeric, sa.CheckConstraint("total > 0"), nullable=False),
)


@app.task
def send_confirmation(order_id: int, email: str) -> str:
    return f"mailed {email} about order {order_id}"


def place_order(email: str, total: float) -> baozi.Job | None:
    """Save the order and enqueue its e-mail: both happen, or neither does."""
    try:
        with engine.begin() as conn, app.transaction(conn):
            order_id = conn.execute(
                orders.insert().values(email=email, total=total).returning(orders.c.id)
            ).scalar_one()
            return send_confirmation.delay(order_id, email)
    except sa.exc.IntegrityError:
        print(f"order for {email} refused (total {total}): rolled back, no e-mail enqueued")
        return None


def main() -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {orders.schema}"))
        orders.metadata.create_all(conn)
    jobs = [
        j
        for j in (place_order("ada@example.com", 12.5), place_order("bob@example.com", -1))
        if j is not None
    ]
    if "--burst" in sys.argv:  # no worker running elsewhere: run the jobs here
        baozi.Worker(app).run(burst=True)
    for job in jobs:
        print(job.result(timeout=60))


if __name__ == "__main__":
    main()
