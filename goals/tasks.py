"""Celery tasks fired by beat for goal and DAG schedules (rows written by goals/schedules.py
and dags/schedules.py)."""

from __future__ import annotations

from celery import shared_task

from goals import ticks


@shared_task(name="goals.goal_schedule_tick", ignore_result=True)
def goal_schedule_tick(schedule_id: str) -> None:
    ticks.goal_schedule_fire(schedule_id=schedule_id)


@shared_task(name="goals.dag_schedule_tick", ignore_result=True)
def dag_schedule_tick(dag_id: str) -> None:
    ticks.dag_schedule_fire(dag_id=dag_id)
