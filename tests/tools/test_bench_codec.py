"""``python -m lnc.tools.bench.codec``: the table compares the models given, in one run (no timing is asserted)."""
from __future__ import annotations

import re

from lnc.tools.bench.codec import main


def test_table_has_a_row_per_model_and_the_first_decodes_at_ratio_one(capsys, recorded) -> None:
    main(["-m", "he2021-checkerboard-exact-vr", "-m", "mbt2018-mean-vr", "--repeat", "1", "-q", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("kodim01.png 768x512")
    rows = {line.split()[1]: line.split() for line in lines[2:] if line.startswith("lnc ")}
    assert list(rows) == ["he2021-checkerboard-exact-vr", "mbt2018-mean-vr"]
    assert rows["he2021-checkerboard-exact-vr"][-2:] == ["1.00", "1.00"]
    for name, row in rows.items():  # the whole file's bpp, as each model's card records it
        assert abs(float(row[-3]) - recorded(name, "kodim01.png", 2)["bpp"]) < 0.001, (name, row)
        encode_s, decode_s, encode_mps, decode_mps = map(float, row[2:6])
        # Seconds print to 3 decimals and MP/s to 2: consistent within those roundings (≤ 0.5 % here).
        assert abs(encode_mps * encode_s * 1e6 / (768 * 512) - 1) < 0.01 and decode_mps > 0, row
    assert any(re.match(r"Pillow WEBP q75", line) for line in lines)
