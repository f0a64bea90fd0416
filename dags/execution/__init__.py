"""DAG execution on Celery: the database decides what runs; the queue only carries node ids."""
