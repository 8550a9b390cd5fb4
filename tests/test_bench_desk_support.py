"""The desk benchmark's comparison of the simulator's change log with confwatch's events
(tests/bench/desk_support.py), on hand-made sequences."""

from tests.bench.desk_support import compare, screen_latencies

# (value, at): the value at creation, then each change.
SIMULATED = [("created", 0.0), ("active", 10.0), ("completed", 20.0)]


def test_every_change_stored_once_in_order_is_neither_missing_nor_duplicated():
    stored = [("created", 1, 1.0, 1.0), ("active", 2, 10.5, 10.5), ("completed", 3, 21.0, 21.0)]

    result = compare(SIMULATED, stored)

    assert (result.changes, result.missing, result.duplicated, result.out_of_order) == (2, 0, 0, 0)
    assert result.matched == [(10.0, 10.5, True), (20.0, 21.0, True)]
    assert result.change_at_by_event == {2: 10.0, 3: 20.0}


def test_a_change_never_stored_is_missing():
    result = compare(SIMULATED, [("created", 1, 1.0, 1.0), ("completed", 3, 21.0, 21.0)])

    assert (result.missing, result.duplicated, result.out_of_order) == (1, 0, 0)


def test_changes_after_the_last_stored_one_are_missing():
    assert compare(SIMULATED, [("created", 1, 1.0, 1.0)]).missing == 2
    assert compare(SIMULATED, []).missing == 2


def test_a_first_observation_after_a_change_counts_the_change_as_stored():
    result = compare(SIMULATED, [("active", 1, 12.0, 12.0), ("completed", 2, 21.0, 21.0)])

    assert (result.missing, result.out_of_order) == (0, 0)
    assert result.matched == [(10.0, 12.0, True), (20.0, 21.0, True)]


def test_the_same_value_stored_twice_is_a_duplicate():
    stored = [("created", 1, 1.0, 1.0), ("active", 2, 10.5, 10.5), ("active", 3, 11.0, 11.0)]
    stored.append(("completed", 4, 21.0, 21.0))

    result = compare(SIMULATED, stored)

    assert (result.missing, result.duplicated, result.out_of_order) == (0, 1, 0)


def test_a_value_stored_after_a_later_one_is_out_of_order():
    stored = [("created", 1, 1.0, 1.0), ("completed", 2, 21.0, 21.0), ("active", 3, 22.0, 22.0)]

    result = compare(SIMULATED, stored)

    assert (result.missing, result.out_of_order) == (1, 1)


def test_a_value_repeated_by_the_simulator_matches_the_one_in_effect_when_stored():
    simulated = [(0, 0.0), (1, 10.0), (2, 20.0), (1, 30.0)]

    result = compare(simulated, [(0, 1, 1.0, 1.0), (1, 2, 31.0, 31.0)])

    assert result.matched == [(30.0, 31.0, True)]
    assert result.missing == 2


def test_a_value_a_callback_left_unknown_claims_nothing():
    simulated = [(False, 0.0), (True, 10.0)]

    result = compare(simulated, [(None, 1, 1.0, 1.0), (False, 2, 5.0, 5.0), (True, 3, 11.0, 11.0)])

    assert (result.missing, result.duplicated, result.out_of_order) == (0, 0, 0)
    assert result.matched == [(10.0, 11.0, True)]


def test_a_change_written_late_matches_the_change_it_observed_not_a_later_one():
    # 1 -> 2 -> 3 -> 2: the first 2 (observed at 2.0) is written at 4.5, after the second 2.
    simulated = [(1, 0.0), (2, 2.0), (3, 3.0), (2, 4.0)]
    stored = [(1, 1, 0.5, 0.6), (2, 2, 2.0, 4.5), (3, 3, 3.0, 4.6), (2, 4, 4.0, 4.7)]

    result = compare(simulated, stored)

    assert (result.missing, result.duplicated, result.out_of_order) == (0, 0, 0)
    assert result.matched == [(2.0, 4.5, True), (3.0, 4.6, True), (4.0, 4.7, True)]


def test_a_polled_change_shorter_than_a_poll_interval_is_too_short_not_missing():
    # 0 -> 1 for 3 s -> 2 for 30 s -> 3 (lasting to the end): polled every 10 s at best.
    simulated = [(0, 0.0), (1, 10.0), (2, 13.0), (3, 43.0)]

    result = compare(
        simulated, [(0, 1, 1.0, 1.0), (3, 2, 50.0, 50.0)], carried=lambda v: False, shortest=10.0
    )

    assert (result.missing, result.too_short) == (1, 1)  # the 2 lasted long enough
    assert result.matched == [(43.0, 50.0, False)]


def test_a_polled_change_back_to_the_value_last_stored_is_invisible_to_a_poll():
    simulated = [(0, 0.0), (1, 10.0), (0, 12.0)]

    result = compare(
        simulated, [(0, 1, 1.0, 1.0)], carried=lambda v: False, shortest=10.0, until=100.0
    )

    assert (result.missing, result.too_short) == (0, 2)


def test_a_change_a_callback_carries_is_missing_however_short():
    simulated = [(0, 0.0), (1, 10.0), (2, 10.5)]

    result = compare(simulated, [(0, 1, 1.0, 1.0), (2, 2, 10.6, 10.7)], shortest=10.0)

    assert (result.missing, result.too_short) == (1, 0)


def test_the_last_polled_change_lasts_until_the_end_of_the_run():
    simulated = [(0, 0.0), (1, 10.0)]

    short = compare(simulated, [(0, 1, 1.0, 1.0)], carried=lambda v: False, shortest=10.0, until=15)
    long = compare(simulated, [(0, 1, 1.0, 1.0)], carried=lambda v: False, shortest=10.0, until=25)

    assert (short.missing, short.too_short, long.missing, long.too_short) == (0, 1, 1, 0)


def test_a_count_shown_is_timed_from_the_latest_change_to_it_before_it_was_shown():
    simulated = {"conf-1": {"active_members": [(0, 0.0), (1, 2.0), (2, 3.0), (1, 4.0)]}}

    latencies = screen_latencies(simulated, [("conf-1", 2, 5.0), ("conf-1", 1, 6.5)])

    assert latencies == [2.0, 2.5]


def test_a_count_shown_again_by_later_refreshes_is_timed_once_from_its_first_sighting():
    simulated = {"conf-1": {"active_members": [(0, 0.0), (3, 2.0), (4, 30.0)]}}
    shown = [("conf-1", 3, 4.0), ("conf-1", 3, 6.0), ("conf-1", 3, 8.0), ("conf-1", 4, 31.0)]

    assert screen_latencies(simulated, shown) == [2.0, 1.0]


def test_a_count_no_change_led_to_is_not_timed():
    simulated = {"conf-1": {"active_members": [(0, 0.0), (1, 2.0)]}}

    assert screen_latencies(simulated, [("conf-1", 5, 3.0), ("conf-2", 1, 3.0)]) == []
