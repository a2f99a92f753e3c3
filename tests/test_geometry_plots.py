"""The Figure-2-style contact scatter."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from resectbench.geometry.plots import contact_scatter, contact_summary  # noqa: E402


def test_summary_from_dict_and_tidy_frame_agree():
    contacts = {"a": {"sma": 200.0, "smv": 30.0}, "b": {"portal_vein": 250.0, "celiac_trunk": 40.0}, "c": {}}
    s = contact_summary(contacts, labels={"a": 2, "b": 1, "c": 0})
    assert s.loc["a", "arterial_deg"] == 200 and s.loc["a", "venous_deg"] == 30
    assert s.loc["b", "arterial_deg"] == 40 and s.loc["b", "venous_deg"] == 250
    assert s.loc["c", "arterial_deg"] == 0 and s.loc["c", "label"] == 0
    tidy = pd.DataFrame(
        [{"case_id": c, "vessel": v, "contact_deg": d} for c, vs in contacts.items() for v, d in vs.items()]
    )
    t = contact_summary(tidy)
    assert t.loc["b", "venous_deg"] == 250


def test_scatter_draws_classes_lines_and_rings(tmp_path):
    s = contact_summary({"a": {"sma": 200.0}, "b": {"smv": 250.0}, "c": {"smv": 20.0}}, labels={"a": 2, "b": 1, "c": 0})
    ax = contact_scatter(s, misclassified=["b"])
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("locally advanced (n=1)" in t for t in texts) and any("misclassified (n=1)" in t for t in texts)
    assert sorted(round(line.get_xdata()[0]) for line in ax.lines if len(set(line.get_xdata())) == 1) == [180]
    ax.figure.savefig(tmp_path / "fig2.png")
    assert (tmp_path / "fig2.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="arterial_deg"):
        contact_scatter(pd.DataFrame({"x": [1]}))
