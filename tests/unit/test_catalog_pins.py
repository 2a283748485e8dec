"""Pins: the ids of the last apply, stored as compact JSON (a file for the CLI, an SSM parameter for the Lambda)."""

from __future__ import annotations

import pytest
from kantata_bridge.catalog.config import CatalogConfig, DesiredSet, DesiredStatus
from kantata_bridge.catalog.pins import CatalogPins, PinsError, SetPins, pins_from_sets
from kantata_bridge.kantata.models import CustomTaskStatus, TaskStatusSet


def test_pins_round_trip_through_json() -> None:
    pins = CatalogPins({"PROJ": SetPins("7", {"to do": "70", "done": "71"})})
    assert CatalogPins.from_json(pins.to_json()) == pins
    assert CatalogPins.from_json("") == CatalogPins()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ('{"version": 2, "sets": {}}', "version 1"),
        ('{"version": 1}', "no 'sets'"),
        ('{"version": 1, "sets": {"P": {}}}', "have no 'id'"),
        ('{"version": 1, "sets": {"P": {"id": "1", "statuses": {"a": 1}}}}', "bad 'statuses'"),
    ],
)
def test_unreadable_pins_are_refused(text: str, message: str) -> None:
    with pytest.raises(PinsError, match=message):
        CatalogPins.from_json(text)


def test_pins_record_the_ids_of_the_configured_statuses_only() -> None:
    config = CatalogConfig((DesiredSet("PROJ", (DesiredStatus("To Do", "not started"),)),))
    statuses = (
        CustomTaskStatus("70", "to do", "not started", 0, 7),
        CustomTaskStatus("71", "Extra", "started", 1, 7),
    )
    sets = [TaskStatusSet("7", "PROJ", ("70", "71"), statuses), TaskStatusSet("8", "Other")]
    assert pins_from_sets(config, sets) == CatalogPins({"PROJ": SetPins("7", {"to do": "70"})})
