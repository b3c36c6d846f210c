"""The restatement log's checkpoint, and the snapshot history maintenance keeps for it."""

from __future__ import annotations

import pytest

from smartmeter.pipeline.maintenance import duration_seconds, expiry_retention
from smartmeter.pipeline.restatements import Checkpoint


def test_a_checkpoint_reads_back_what_it_wrote():
    checkpoint = Checkpoint(8_123_456_789_012_345_678, 42)
    assert Checkpoint.parse(str(checkpoint)) == checkpoint
    assert Checkpoint.parse(None) is None
    assert Checkpoint.parse("") is None


@pytest.mark.parametrize(("duration", "seconds"), [("1d", 86400), ("36h", 129600), ("90m", 5400), ("2.5s", 2.5),
                                                   ("500ms", 0.5)])
def test_durations_are_read_in_trinos_units(duration, seconds):
    assert duration_seconds(duration) == seconds


def test_expiry_keeps_the_last_published_snapshot():
    assert expiry_retention("1d", 0) == "1d"
    assert expiry_retention("1d", 3600) == "1d"
    # A catch-up longer than the retention: its published snapshot stays.
    assert expiry_retention("1d", 2 * 86400 + 0.4) == "172801s"
