"""Tests of smsanalytics.plots: the artists drawn match the answers of the questions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from decimal import Decimal

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from smsanalytics import plots, queries  # noqa: E402

from ._fixtures_queries import PARIS, rows, table  # noqa: E402


@pytest.fixture(autouse=True)
def _no_show_or_save(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("plots must not show or save")

    monkeypatch.setattr(plt, "show", boom)
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", boom)


@pytest.fixture
def con():
    c = queries.connect(table(), currency="EUR")
    yield c
    c.close()


def heights(ax) -> list[float]:
    return [p.get_height() for p in ax.patches]


def widths(ax) -> list[float]:
    return [p.get_width() for p in ax.patches]


def stacks(ax) -> dict[str, list[float]]:
    """Label of each bar container -> its bar heights (or widths, for horizontal bars)."""
    out = {}
    for c in ax.containers:
        horizontal = c.orientation == "horizontal"
        out[c.get_label()] = [p.get_width() if horizontal else p.get_height() for p in c]
    return out


def tick_labels(axis) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels()]


def formatted(axis, value: float) -> str:
    return axis.get_major_formatter()(value, 0)


# ---------------------------------------------------------------- conventions


def test_draws_on_the_current_axes_and_returns_it(con):
    fig, ax = plt.subplots()
    assert plots.plot_volume(queries.volume(con)) is ax
    other = plt.figure().add_subplot()
    assert plots.plot_volume(queries.volume(con), ax=ax) is ax
    assert not other.patches


def test_accepts_a_connection_and_query_arguments(con):
    ax = plots.plot_volume(con, query={"freq": "month", "tz": PARIS})
    assert sorted(heights(ax)) == sorted(Counter(
        r["created_at"].astimezone(__import__("zoneinfo").ZoneInfo(PARIS)).month
        for r in rows()).values())


def test_kwargs_reach_matplotlib(con):
    ax = plots.plot_volume(queries.volume(con), color="red", alpha=0.5)
    assert ax.patches[0].get_facecolor() == to_rgba("red", 0.5)


def test_consistent_colours():
    assert plots.color_for("country", "FR") == plots.country_color("FR")
    assert plots.country_color("FR") != plots.country_color("BE")
    assert plots.color_for("encoding", "gsm") == plots.ENCODING_COLORS["gsm"]
    assert plots.color_for("country", None) == plots.UNKNOWN_COLOR != plots.OTHER_COLOR
    assert plots.color_for("status", plots.OTHER) == plots.OTHER_COLOR


#: Values whose colour is derived from the value itself (not in a fixed table).
_DERIVED = [("country", "ZZ"), ("country", "jp"), ("carrier", "Orange"), ("sender", "ACME")]


@pytest.mark.parametrize("seed", ["0", "4242"])
def test_derived_colours_are_the_same_in_every_process(seed):
    # Python's str hash changes with each process (PYTHONHASHSEED): a colour derived from
    # it would differ between two reports of the same data.
    code = ("import json, sys; from smsanalytics import plots; "
            "json.dump([plots.color_for(d, v) for d, v in json.loads(sys.argv[1])], sys.stdout)")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(_DERIVED)], check=True,
                         capture_output=True, text=True,
                         env={**os.environ, "PYTHONHASHSEED": seed, "MPLBACKEND": "Agg"})
    assert json.loads(out.stdout) == [plots.color_for(d, v) for d, v in _DERIVED]


# ---------------------------------------------------------------- each plot


def test_plot_volume_bars_labels_and_dates(con):
    df = queries.volume(con, freq="day", tz=PARIS)
    ax = plots.plot_volume(df, kind="bar")
    assert heights(ax) == df["messages"].tolist()
    assert "Paris" in ax.get_title() and "day" in ax.get_title()
    assert ax.get_ylabel() == "messages [count]"
    assert formatted(ax.yaxis, 12345) == "12,345"
    # bars sit on the local midnight of each Paris day
    import matplotlib.dates as mdates

    starts = [mdates.num2date(p.get_x() + p.get_width() / 2).date() for p in ax.patches]
    assert starts == [p.date() for p in df["period"]]
    assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)


def test_plot_volume_cost_has_currency(con):
    df = queries.volume(con, freq="month")
    ax = plots.plot_volume(df, y="cost")
    assert heights(ax) == pytest.approx([float(v) for v in df["cost"]])
    assert ax.get_ylabel() == "cost [EUR]"
    assert formatted(ax.yaxis, 1234.5) == "1,234.50"


def test_plot_top_senders(con):
    df = queries.top_senders(con, n=3)
    ax = plots.plot_top_senders(df)
    assert widths(ax) == df["messages"].tolist()
    assert tick_labels(ax.yaxis) == df["from_number"].tolist()
    assert ax.yaxis_inverted()  # largest on top
    assert ax.get_xlabel() == "messages [count]"
    assert "Top 3 senders" in ax.get_title()
    for p, country in zip(ax.patches, df["country"], strict=True):
        assert p.get_facecolor() == to_rgba(plots.country_color(country))
    by_cost = plots.plot_top_senders(queries.top_senders(con, by="cost"), ax=plt.figure()
                                     .add_subplot())
    assert by_cost.get_xlabel() == "cost [EUR]"


def test_plot_sender_activity(con):
    df = queries.sender_activity(con, freq="month")
    ax = plots.plot_sender_activity(df)
    s = stacks(ax)
    assert s["new"] == df["new_senders"].tolist()
    assert s["returning"] == df["returning_senders"].tolist()
    assert ax.get_ylabel() == "senders [count]"


def test_plot_locations_top_n_and_other(con):
    df = queries.locations(con)
    ax = plots.plot_locations(df, n=2)
    counts = Counter(r["from_country"] for r in rows()).most_common()
    top = [c for c, _ in counts[:2]]
    assert tick_labels(ax.yaxis) == [*top, "other"]
    assert widths(ax) == [counts[0][1], counts[1][1], sum(n for _, n in counts[2:])]
    assert ax.patches[0].get_facecolor() == to_rgba(plots.country_color(top[0]))
    assert ax.patches[-1].get_facecolor() == to_rgba(plots.OTHER_COLOR)
    shares = [t.get_text() for t in ax.texts]
    assert shares[0] == f"{counts[0][1] / len(rows()):.1%}"
    assert ax.get_title() == "Messages by sender country"


def test_plot_locations_by_location(con):
    ax = plots.plot_locations(queries.locations(con, by="location"), n=None, x="cost")
    assert "FR · France" in tick_labels(ax.yaxis)
    assert ax.get_xlabel() == "cost [EUR]"


def test_plot_encodings(con):
    df = queries.encodings(con)
    ax = plots.plot_encodings(df)
    assert heights(ax) == df["messages"].tolist()
    assert tick_labels(ax.xaxis) == df["encoding"].tolist()
    for p, enc in zip(ax.patches, df["encoding"], strict=True):
        assert p.get_facecolor() == to_rgba(plots.ENCODING_COLORS[enc])


def test_plot_encodings_by_country_shares(con):
    df = queries.encodings(con, by="country")
    ax = plots.plot_encodings(df, n=2)
    s = stacks(ax)
    labels = tick_labels(ax.yaxis)
    assert labels[-1] == "other" and len(labels) == 3
    fr = labels.index("FR")
    fr_rows = [r for r in rows() if r["from_country"] == "FR"]
    gsm = sum(r["encoding"] == "gsm" for r in fr_rows) / len(fr_rows)
    assert s["gsm"][fr] == pytest.approx(gsm)
    assert s["gsm"][fr] + s["unicode"][fr] == pytest.approx(1.0)
    assert "%" in ax.get_xlabel()


def test_plot_parts_distribution(con):
    ax = plots.plot_parts_distribution(queries.parts_distribution(con))
    s = stacks(ax)
    counts = Counter((r["parts"], r["encoding"]) for r in rows())
    parts = sorted({r["parts"] for r in rows()})
    assert s["gsm"] == [counts[(p, "gsm")] for p in parts]
    assert s["unicode"] == [counts[(p, "unicode")] for p in parts]
    assert tick_labels(ax.xaxis) == [str(p) for p in parts]
    assert "segments" in ax.get_xlabel()


def test_plot_costs_total(con):
    ax = plots.plot_costs(queries.costs(con))
    assert heights(ax) == [pytest.approx(float(Decimal("16.546") / 100))]
    assert ax.get_ylabel() == "cost [EUR]"


def test_plot_costs_by_country_top_n(con):
    df = queries.costs(con, by="country")
    ax = plots.plot_costs(df, n=2)
    per = {}
    for r in rows():
        per[r["from_country"]] = per.get(r["from_country"], Decimal(0)) + r["cost_cents"] / 100
    ranked = sorted(per.items(), key=lambda kv: -kv[1])
    assert tick_labels(ax.yaxis) == [ranked[0][0], ranked[1][0], "other"]
    assert widths(ax) == pytest.approx(
        [float(ranked[0][1]), float(ranked[1][1]), float(sum(v for _, v in ranked[2:]))])
    assert ax.get_xlabel() == "cost [EUR]"


def test_plot_costs_by_month_and_traffic(con):
    df = queries.costs(con, by=["month", "traffic_type"], tz=PARIS)
    ax = plots.plot_costs(df)
    s = stacks(ax)
    assert set(s) == {"marketing", "alerting"}
    months = sorted(set(df["month"]))
    for t, bars in s.items():
        sub = df[df["traffic_type"] == t].set_index("month")["cost"]
        assert bars == pytest.approx([float(sub.get(m, 0)) for m in months])
    assert ax.legend_.get_title().get_text() == "traffic type"
    assert "Paris" in ax.get_title()


def test_plot_traffic_and_statuses(con):
    df = queries.traffic(con, freq="month")
    ax = plots.plot_traffic(df)
    s = stacks(ax)
    for t in ("marketing", "alerting"):
        per_month = Counter(r["created_at"].month for r in rows() if r["traffic_type"] == t)
        assert s[t] == [per_month[3], per_month[10]]
    assert ax.containers[0].patches[0].get_facecolor() == to_rgba(
        plots.TRAFFIC_COLORS[ax.containers[0].get_label()])
    st = plots.plot_statuses(queries.statuses(con, freq=None), ax=plt.figure().add_subplot())
    counts = Counter(r["status"] for r in rows())
    assert dict(zip(tick_labels(st.yaxis), widths(st), strict=True)) == dict(counts)


def test_plot_activity_pattern(con):
    df = queries.activity_pattern(con, tz=PARIS)
    ax = plots.plot_activity_pattern(df)
    grid = ax.images[0].get_array()
    assert grid.shape == (7, 24)
    assert grid[6, 2] == 2  # Sunday 02:30 Paris, twice on 2025-10-26
    assert np.sum(grid) == len(rows())
    assert tick_labels(ax.yaxis)[0] == "Mon"
    assert "Paris" in ax.get_xlabel()


def test_plot_keywords(con):
    df = queries.keywords(con, freq="month")
    ax = plots.plot_keywords(df)
    s = stacks(ax)
    assert s["opt-out"] == [2, 4] and s["opt-in"] == [0, 1]
    ax2 = plots.plot_keywords(queries.keywords(con, freq=None), by="keyword", n=2,
                              ax=plt.figure().add_subplot())
    assert tick_labels(ax2.yaxis)[0] == "STOP"
    assert tick_labels(ax2.yaxis)[-1] == "other"
    assert widths(ax2) == [2, 1, 4]


def test_plot_handles_unknown_country():
    df = pd.DataFrame(rows())
    df.loc[0, "from_country"] = None
    ax = plots.plot_locations(queries.locations(df), n=None)
    assert "unknown" in tick_labels(ax.yaxis)
    bar = ax.patches[tick_labels(ax.yaxis).index("unknown")]
    assert bar.get_facecolor() == to_rgba(plots.UNKNOWN_COLOR)
    assert plots.color_for("country", "unknown") == plots.UNKNOWN_COLOR


# ---------------------------------------------------------------- labels from the data


DOLLARS = ["$\\frac{$", "US$ 5", "$x$", "a$b$c$", "\\$"]


def hostile_frame() -> pd.DataFrame:
    df = pd.DataFrame(rows())
    for i, text in enumerate(DOLLARS):
        df.loc[i, "from_country"] = text
        df.loc[i, "from_number"] = text
        df.loc[i, "from_location"] = text
        df.loc[i, "traffic_type"] = text
    df.loc[6, "from_number"] = "\x1b[31mred\u202e"
    df.loc[6, "from_country"] = "\x1b[31mred\u202e"
    return df


def shown(text) -> str:
    """What matplotlib draws for a Text: its string after mathtext's escape handling."""
    s, math = text._preprocess_math(text.get_text())
    assert not math, text.get_text()
    return s


PLOTS = {
    "top_senders": lambda c: plots.plot_top_senders(queries.top_senders(c, n=20)),
    "locations": lambda c: plots.plot_locations(queries.locations(c), n=None),
    "by_location": lambda c: plots.plot_locations(queries.locations(c, by="location"), n=None),
    "costs": lambda c: plots.plot_costs(queries.costs(c, by="country"), n=None),
    "costs_stacked": lambda c: plots.plot_costs(queries.costs(c, by=["country",
                                                                    "traffic_type"])),
    "encodings": lambda c: plots.plot_encodings(queries.encodings(c, by="country")),
    "traffic": lambda c: plots.plot_traffic(queries.traffic(c, freq="month")),
}


@pytest.mark.parametrize("name", PLOTS)
def test_labels_with_dollars_and_controls_are_text(name):
    c = queries.connect(hostile_frame(), currency="US$")
    try:
        ax = PLOTS[name](c)
    finally:
        c.close()
    ax.figure.canvas.draw()  # mathtext would parse here, and fail on "$\frac{$"
    texts = [t for t in ax.figure.findobj(matplotlib.text.Text) if t.get_text()]
    drawn = [shown(t) for t in texts]
    assert not any("\x1b" in d or "\u202e" in d for d in drawn)
    if name in ("top_senders", "locations", "costs"):
        assert set(DOLLARS) <= set(drawn), drawn
        assert "\\x1b[31mred\\u202e" in drawn
    if name == "costs":
        assert ax.get_xlabel() == "cost [US\\$]" and shown(ax.xaxis.label) == "cost [US$]"
