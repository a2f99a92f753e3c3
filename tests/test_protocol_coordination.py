"""Unit claims in the shared storage: exclusive, heartbeating, released, taken over when stale."""

import time

import pytest

from resectbench.protocol.coordination import UnitBoard, open_storage
from resectbench.protocol.errors import ProtocolError


@pytest.fixture(params=["sqlite", "journal"])
def storage(request, tmp_path):
    if request.param == "sqlite":
        return open_storage(None, tmp_path)
    return open_storage(f"journal:{tmp_path / 'bench.log'}")


def test_a_unit_is_claimed_by_one_worker_and_its_result_shared(storage):
    a, b = UnitBoard(storage, "bench", worker="hostA:1:x"), UnitBoard(storage, "bench", worker="hostB:2:y")
    claim = a.try_claim("m", "fold_0_0")
    assert claim is not None and b.try_claim("m", "fold_0_0") is None
    assert b.status("m", "fold_0_0") == "running"
    claim.complete({"answer": 42})
    assert b.status("m", "fold_0_0") == "done" and b.result("m", "fold_0_0") == {"answer": 42}
    assert b.try_claim("m", "fold_0_0") is None
    assert list(b.all_claims()) == [("m", "fold_0_0")]


def test_heartbeats_keep_a_claim_alive_and_silence_makes_it_stale(storage):
    a = UnitBoard(storage, "bench", worker="hostA:1:x", heartbeat_every=0.05, stale_after=0.5)
    b = UnitBoard(storage, "bench", worker="hostB:2:y", stale_after=0.5)
    claim = a.try_claim("m", "fold_0_1")
    first = a.state(claim.study_id, 0).heartbeat
    time.sleep(0.7)
    assert a.state(claim.study_id, 0).heartbeat > first  # beating from its thread
    assert b.status("m", "fold_0_1") == "running"
    claim._stop_beating()  # the holder hangs (or its machine vanished)
    time.sleep(0.7)
    assert b.status("m", "fold_0_1") == "stale"
    taken = b.try_claim("m", "fold_0_1")
    assert taken is not None and taken.generation == 1
    taken.complete({"by": "b"})
    assert a.result("m", "fold_0_1") == {"by": "b"}


def test_released_claims_and_dead_local_holders_are_free_at_once(storage):
    a = UnitBoard(storage, "bench", worker="hostA:1:x")
    claim = a.try_claim("m", "fold_0_2")
    claim.release()
    assert a.status("m", "fold_0_2") == "stale"
    import socket

    dead = UnitBoard(storage, "bench", worker=f"{socket.gethostname()}:999999999:z")  # no such pid
    dead.try_claim("m", "fold_0_3")
    assert a.status("m", "fold_0_3") == "stale"


def test_benchmark_metadata_must_match(storage):
    board = UnitBoard(storage, "bench")
    board.publish_meta({"data_fingerprint": "d1", "split_fingerprint": "s1", "config": {"models": ["a"]}})
    board.publish_meta({"data_fingerprint": "d1", "split_fingerprint": "s1", "config": {"models": ["a", "b"]}})
    assert board.read_meta()["config"]["models"] == ["a", "b"]
    with pytest.raises(ProtocolError, match="different data"):
        board.publish_meta({"data_fingerprint": "d2", "split_fingerprint": "s1"})
