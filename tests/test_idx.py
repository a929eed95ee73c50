import gzip

import numpy as np
import pytest

from engine.idx import IdxError, encode_idx, parse_idx, read_idx, write_idx


def test_round_trip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", a)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), a)
    assert gzip.decompress((tmp_path / "a.gz").read_bytes())[:4] == b"\x00\x00\x08\x03"


@pytest.mark.parametrize("raw, words", [
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "magic"),
    (b"\x00\x00\x0d\x01\x00\x00\x00\x01\x05", "data type"),
    (b"\x00\x00\x08\x02\x00\x00", "truncated"),
    (encode_idx(np.zeros((3, 2), np.uint8))[:-1], "promises"),
])
def test_bad_files_are_refused(raw, words):
    with pytest.raises(IdxError, match=words):
        parse_idx(raw)
