"""Local socket admission: monitors share their own capacity, per uid and in total; technicians keep theirs."""

from __future__ import annotations

from controller.links.admission import Admission, SocketLimits

LIMITS = SocketLimits(monitors_total=5, monitors_per_uid=2, technicians_total=3)


def test_one_user_cannot_take_more_than_its_share() -> None:
    admission = Admission(LIMITS)
    assert [admission.admit("monitor", 1000) for _ in range(3)][:2] == [None, None]
    assert admission.admit("monitor", 1000) == "too many connections from uid 1000 (at most 2 per user)"
    assert admission.admit("monitor", 1001) is None  # another user still gets in


def test_monitors_never_take_the_technicians_capacity() -> None:
    admission = Admission(LIMITS)
    for uid in range(10):
        admission.admit("monitor", 2000 + uid)
    assert admission.held("monitor") == LIMITS.monitors_total
    assert admission.admit("monitor", 3000) == "too many monitor connections (at most 5)"
    assert [admission.admit("technician", 0) for _ in range(3)] == [None, None, None]
    assert admission.admit("technician", 0) == "too many technician connections (at most 3)"
    assert admission.refused == 7


def test_leaving_gives_the_slot_back() -> None:
    admission = Admission(LIMITS)
    assert admission.admit("monitor", 1) is None and admission.admit("monitor", 1) is None
    assert admission.admit("monitor", 1) is not None
    admission.leave("monitor", 1)
    assert admission.admit("monitor", 1) is None
    admission.admit("technician", 0)
    admission.leave("technician", 0)
    assert admission.held("technician") == 0
