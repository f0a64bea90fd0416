"""Query parameters: no parameters at all (most list requests) give the serializer's defaults,
built once per serializer, without sharing state between requests."""

from __future__ import annotations

from itertools import count

from django.http import QueryDict
from rest_framework import serializers

from config.api.validation import validated_query
from goals.serializers import GoalListQuery


def test_no_parameters_give_the_defaults_and_each_call_its_own_dict():
    first = validated_query(GoalListQuery, QueryDict(""))
    first["limit"] = 7
    assert validated_query(GoalListQuery, QueryDict("")) == {"limit": 100, "offset": 0}
    assert validated_query(GoalListQuery, QueryDict("status=&limit=")) == {
        "limit": 100,
        "offset": 0,
    }
    assert validated_query(GoalListQuery, QueryDict("limit=5"))["limit"] == 5


def test_a_callable_default_is_asked_every_time():
    ticks = count()

    class Ticking(serializers.Serializer):
        at = serializers.IntegerField(default=lambda: next(ticks))

    assert validated_query(Ticking, QueryDict(""))["at"] == 0
    assert validated_query(Ticking, QueryDict(""))["at"] == 1
