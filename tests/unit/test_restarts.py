"""When `gymledger run` restarts a crashed child, and when it gives up."""

from workers.restarts import RestartHistory, RestartPolicy


def crashes(
    history: RestartHistory, times: list[float], ran_for: float = 1.0
) -> list[float | None]:
    """The pause chosen after each crash at `times`, for a child that ran `ran_for` s."""
    return [history.next_delay(at - ran_for, at) for at in times]


def test_the_pause_doubles_from_half_a_second_up_to_thirty() -> None:
    history = RestartHistory(RestartPolicy(max_restarts=100, window=60))
    delays = crashes(history, [float(t) for t in range(10)])
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]


def test_a_minute_of_health_starts_the_pause_over() -> None:
    history = RestartHistory(RestartPolicy(max_restarts=100, window=60))
    assert crashes(history, [1.0, 2.0, 3.0]) == [0.5, 1.0, 2.0]
    assert history.next_delay(started_at=4.0, exited_at=64.0) == 0.5  # ran 60 s
    assert history.next_delay(started_at=64.5, exited_at=65.0) == 1.0  # crashing again


def test_too_many_crashes_within_the_window_give_up() -> None:
    history = RestartHistory(RestartPolicy(max_restarts=3, window=10))
    assert crashes(history, [0.0, 1.0, 2.0]) == [0.5, 1.0, 2.0]
    assert history.recent == 3
    assert history.next_delay(2.5, 3.0) is None


def test_crashes_older_than_the_window_are_forgotten() -> None:
    history = RestartHistory(RestartPolicy(max_restarts=2, window=10))
    assert crashes(history, [0.0, 5.0]) == [0.5, 1.0]
    assert history.next_delay(10.5, 11.0) == 2.0  # the crash at 0 s left the window
    assert history.recent == 2
    assert history.next_delay(11.5, 12.0) is None  # 5 s and 11 s are still in it


def test_no_restarts_allowed_gives_up_at_the_first_crash() -> None:
    assert RestartHistory(RestartPolicy(max_restarts=0)).next_delay(0.0, 1.0) is None
