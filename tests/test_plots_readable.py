"""Every plot, drawn on real data, reads at a glance: checked on the artists.

The shipped sample data is converted once per session; each plot function is drawn on it
(and dense variants: hours over three months) and its figure checked by
:mod:`tests._plot_checks`: no text overlaps another or leaves the figure, share labels
stay in the frame, legends cover no bar, categories have distinct colours. The same checks
run on 200,000 generated messages under ``-m slow``, and on random category names (long,
with control and bidirectional characters) with hypothesis.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.patches import Rectangle, StepPatch  # noqa: E402

import smsanalytics as sa  # noqa: E402
from smsanalytics import plots, queries  # noqa: E402

from ._plot_checks import (  # noqa: E402
    bar_colors,
    category_colors_problems,
    legend_colors,
    readability_problems,
)

TZ = "Europe/Paris"
# Random names use scripts DejaVu Sans has no glyph for: drawn as boxes, which is fine.
pytestmark = pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
# The figure sizes an analyst meets: matplotlib's default, the README's half of a wide
# figure, and a small notebook cell.
SIZES = {"default": (6.4, 4.8), "small": (5.0, 3.0), "half": (6.5, 4.0)}


@pytest.fixture(scope="module")
def sample_con(full_sample_dataset):
    con = sa.connect(str(full_sample_dataset), currency="EUR")
    yield con
    con.close()


# Every plot function, drawn every way it can be: name -> (connection, Axes) -> Axes.
CASES = {
    "volume_day": lambda c, ax: plots.plot_volume(queries.volume(c, tz=TZ), ax=ax),
    "volume_hour_3_months": lambda c, ax: plots.plot_volume(
        queries.volume(c, freq="hour", tz=TZ, start="2025-01-01", end="2025-04-01"), ax=ax),
    "volume_week_cost": lambda c, ax: plots.plot_volume(
        queries.volume(c, freq="week", tz=TZ), y="cost", ax=ax),
    "volume_quarter": lambda c, ax: plots.plot_volume(
        queries.volume(c, freq="quarter", tz=TZ), ax=ax),
    "volume_year": lambda c, ax: plots.plot_volume(queries.volume(c, freq="year"), ax=ax),
    "top_senders": lambda c, ax: plots.plot_top_senders(queries.top_senders(c), ax=ax),
    "sender_activity": lambda c, ax: plots.plot_sender_activity(
        queries.sender_activity(c, freq="month", tz=TZ), ax=ax),
    "sender_activity_hour": lambda c, ax: plots.plot_sender_activity(
        queries.sender_activity(c, freq="hour", tz=TZ), ax=ax),
    "locations": lambda c, ax: plots.plot_locations(queries.locations(c), ax=ax),
    "locations_cost": lambda c, ax: plots.plot_locations(
        queries.locations(c, by="location"), x="cost", ax=ax),
    "encodings": lambda c, ax: plots.plot_encodings(queries.encodings(c), ax=ax),
    "encodings_country": lambda c, ax: plots.plot_encodings(
        queries.encodings(c, by="country"), ax=ax),
    "parts": lambda c, ax: plots.plot_parts_distribution(queries.parts_distribution(c),
                                                         ax=ax),
    "costs_total": lambda c, ax: plots.plot_costs(queries.costs(c), ax=ax),
    "costs_operator": lambda c, ax: plots.plot_costs(queries.costs(c, by="operator"), ax=ax),
    "costs_month_country": lambda c, ax: plots.plot_costs(
        queries.costs(c, by=["month", "country"], tz=TZ), ax=ax),
    "costs_quarter_traffic": lambda c, ax: plots.plot_costs(
        queries.costs(c, by=["quarter", "traffic_type"], tz=TZ), ax=ax),
    "costs_country_status": lambda c, ax: plots.plot_costs(
        queries.costs(c, by=["country", "status"]), ax=ax),
    "traffic": lambda c, ax: plots.plot_traffic(queries.traffic(c, freq="month", tz=TZ),
                                                ax=ax),
    "traffic_total": lambda c, ax: plots.plot_traffic(queries.traffic(c, freq=None), ax=ax),
    "statuses": lambda c, ax: plots.plot_statuses(queries.statuses(c, freq="month", tz=TZ),
                                                  ax=ax),
    "statuses_day": lambda c, ax: plots.plot_statuses(queries.statuses(c, freq="day", tz=TZ),
                                                      ax=ax),
    "statuses_total": lambda c, ax: plots.plot_statuses(queries.statuses(c, freq=None),
                                                        ax=ax),
    "activity": lambda c, ax: plots.plot_activity_pattern(
        queries.activity_pattern(c, tz=TZ), ax=ax),
    "keywords": lambda c, ax: plots.plot_keywords(queries.keywords(c, freq="week", tz=TZ),
                                                  ax=ax),
    "keywords_by_keyword": lambda c, ax: plots.plot_keywords(
        queries.keywords(c, freq=None), by="keyword", ax=ax),
    "keywords_year": lambda c, ax: plots.plot_keywords(
        queries.keywords(c, freq="year", tz=TZ), by="keyword", ax=ax),
}


def draw(name: str, con, size=SIZES["default"]):
    fig, ax = plt.subplots(figsize=size)
    return CASES[name](con, ax)


def test_every_plot_function_is_checked():
    drawn = {name for name in plots.__all__ if name.startswith("plot_")}
    source = Path(__file__).read_text(encoding="utf-8")
    assert {name for name in drawn if f"plots.{name}(" not in source} == set()


@pytest.mark.parametrize("size", ["default", "small"])
@pytest.mark.parametrize("name", CASES)
def test_every_plot_reads_on_the_sample_data(sample_con, name, size):
    ax = draw(name, sample_con, SIZES[size])
    assert readability_problems(ax.figure) == []


def test_large_counts_and_amounts_leave_room_between_tick_labels(sample_con):
    # Found on 200,000 messages: "100,000" ran into "125,000" on horizontal bars.
    statuses = queries.statuses(sample_con, freq=None)
    statuses["messages"] = statuses["messages"] * 997
    costs = queries.costs(sample_con, by="country")
    costs["cost"] = costs["cost"].map(lambda v: v * 99991)
    for size in SIZES.values():
        fig, ax = plt.subplots(figsize=size)
        plots.plot_statuses(statuses, ax=ax)
        assert readability_problems(fig) == []
        fig, ax = plt.subplots(figsize=size)
        plots.plot_costs(costs, ax=ax)
        assert readability_problems(fig) == []


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("rows", [0, 1])
def test_every_plot_draws_no_rows_and_one_row_without_a_warning(rows):
    frame = messages(["FR"])[:rows]
    con = queries.connect(frame if rows else pd.DataFrame({"sid": pd.Series([], dtype=str)}),
                          currency="EUR")
    try:
        for name in CASES:
            fig, ax = plt.subplots()
            CASES[name](con, ax)
            assert readability_problems(fig) == [], name
            plt.close(fig)
        ax = plots.plot_volume(queries.volume(con, freq="hour"), kind="step",
                               ax=plt.figure().add_subplot())
        assert len(ax.patches) == rows
    finally:
        con.close()


# matplotlib says so when tight_layout replaces the layout engine we set: expected here.
@pytest.mark.filterwarnings("ignore:The figure layout has changed to tight:UserWarning")
def test_a_figure_without_layout_gets_one_and_tight_layout_still_works(sample_con):
    fig, ax = plt.subplots()
    plots.plot_statuses(queries.statuses(sample_con, freq="month"), ax=ax)
    assert fig.get_layout_engine() is not None  # the legend beside the Axes fits
    fig.tight_layout()  # the user's own choice still works
    fig, ax = plt.subplots()
    plots.plot_activity_pattern(queries.activity_pattern(sample_con), ax=ax)
    fig.tight_layout()  # a colour bar made under constrained layout would refuse this
    fig, ax = plt.subplots(layout="tight")
    plots.plot_traffic(queries.traffic(sample_con, freq="month"), ax=ax)
    assert fig.get_layout_engine().__class__.__name__ == "TightLayoutEngine"


# ---------------------------------------------------------------- dense time series


def bar_widths_in_pixels(ax) -> list[float]:
    ax.figure.canvas.draw()
    return [p.get_window_extent().width for c in ax.containers for p in c]


def test_hours_over_three_months_are_steps_not_invisible_bars(sample_con):
    ax = draw("volume_hour_3_months", sample_con)
    assert ax.containers == []  # no bars at all
    steps = [p for p in ax.patches if isinstance(p, StepPatch)]
    assert len(steps) == 1
    values, edges, _ = steps[0].get_data()
    df = queries.volume(sample_con, freq="hour", tz=TZ, start="2025-01-01", end="2025-04-01")
    # every message is there, and the peak is as high as the busiest hour
    assert values.sum() == df["messages"].sum()
    assert values.max() == df["messages"].max()
    assert ax.get_ylim()[1] < 2 * df["messages"].max()


def test_bars_are_drawn_only_where_each_is_wide_enough(sample_con):
    for size in SIZES.values():
        ax = draw("volume_day", sample_con, size)
        widths = bar_widths_in_pixels(ax)
        if widths:
            # a period of 0.8 bar and 0.2 gap gets at least MIN_BAR_PIXELS
            assert min(widths) >= 0.8 * plots.MIN_BAR_PIXELS - 0.5
        else:
            assert any(isinstance(p, StepPatch) for p in ax.patches)
    wide = draw("volume_day", sample_con, (30, 4))
    assert len(bar_widths_in_pixels(wide)) == len(queries.volume(sample_con, tz=TZ))


def test_kind_forces_bars_or_steps(sample_con):
    df = queries.volume(sample_con, freq="month", tz=TZ)
    ax = plots.plot_volume(df, kind="step")
    assert not ax.containers and isinstance(ax.patches[0], StepPatch)
    bars = plots.plot_volume(df, kind="bar", ax=plt.figure().add_subplot())
    assert [p.get_height() for p in bars.patches] == df["messages"].tolist()
    with pytest.raises(ValueError, match="kind"):
        plots.plot_volume(df, kind="line")


def test_steps_are_zero_in_empty_periods():
    df = pd.DataFrame({"period": pd.to_datetime(["2025-01-01 00:00", "2025-01-01 01:00",
                                                 "2025-03-01 00:00"], utc=True),
                       "messages": [3, 4, 5]})
    df.attrs.update(freq="hour", tz="UTC")
    ax = plots.plot_volume(df, kind="step")
    values, edges, _ = ax.patches[0].get_data()
    assert values.tolist() == [3, 4, 0, 5]
    hour = 1 / 24
    assert np.diff(edges).tolist() == pytest.approx(
        [hour, hour, edges[3] - edges[2], hour])


@pytest.mark.parametrize("freq", queries.FREQS)
def test_every_freq_plots(sample_con, freq):
    # hours over one month (enough periods for steps, and quick)
    window = {"start": "2025-03-01", "end": "2025-04-01"} if freq == "hour" else {}
    ax = plots.plot_volume(queries.volume(sample_con, freq=freq, tz=TZ, **window))
    assert ax.patches
    for question, plot in ((queries.sender_activity, plots.plot_sender_activity),
                           (queries.traffic, plots.plot_traffic),
                           (queries.statuses, plots.plot_statuses),
                           (queries.keywords, plots.plot_keywords)):
        ax = plot(question(sample_con, freq=freq, tz=TZ, **window),
                  ax=plt.figure().add_subplot())
        assert ax.patches and freq in ax.get_title()
    ax = plots.plot_costs(queries.costs(sample_con, by=[freq, "traffic_type"], tz=TZ,
                                        **window), ax=plt.figure().add_subplot())
    assert ax.patches


def test_every_freq_of_the_questions_has_its_period_length():
    assert set(plots._FREQ_STEP) == set(queries.FREQS)


def test_a_quarter_bar_is_a_quarter_wide(sample_con):
    ax = plots.plot_volume(queries.volume(sample_con, freq="quarter", tz=TZ), kind="bar")
    # Q1 2025 is 90 days; bars are 0.8 of their period
    assert ax.patches[0].get_width() == pytest.approx(0.8 * 90)
    # one year alone: its length comes from the freq, not from the spacing of rows
    year = plots.plot_volume(queries.volume(sample_con, freq="year", tz=TZ), kind="bar",
                             ax=plt.figure().add_subplot())
    assert [p.get_width() for p in year.patches] == [pytest.approx(0.8 * 365)]


# ---------------------------------------------------------------- ticks and labels


def test_month_ticks_read_jan_2025_then_feb(sample_con):
    ax = draw("costs_month_country", sample_con, (10, 4))
    ax.figure.canvas.draw()
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert ticks[:2] == ["Jan 2025", "Feb"]
    assert "2025" not in ticks


def test_parts_distribution_shows_every_bar(sample_con):
    df = queries.parts_distribution(sample_con)
    ax = plots.plot_parts_distribution(df)
    ax.figure.canvas.draw()
    bars = [p for c in ax.containers for p in c if p.get_height() > 0]
    assert len(bars) == int((df["messages"] > 0).sum())
    # a bar of one message is still several pixels tall next to one of ~2,000
    assert min(p.get_window_extent().height for p in bars) >= 10
    linear = plots.plot_parts_distribution(df, log=False, ax=plt.figure().add_subplot())
    assert linear.get_yscale() == "linear"


def test_long_labels_are_shortened_and_escaped():
    long = "A" * 200 + "$"
    assert plots._label(long) == "A" * (plots.MAX_LABEL_CHARS - 1) + "…"
    cut = plots._label("x" * (plots.MAX_LABEL_CHARS - 2) + "$$$")
    assert not cut[:-1].endswith("\\")
    assert plots._label("\u202eevil") == "\\u202eevil"


# ---------------------------------------------------------------- colours


def costs_frame(rows: list[tuple[str | None, str | None, str]]) -> pd.DataFrame:
    """A costs(by="operator") answer with a country column: (country, operator, cost)."""
    df = pd.DataFrame({
        "from_country": [r[0] for r in rows],
        "operator": [r[1] for r in rows],
        "messages": [1] * len(rows),
        "cost": pd.array([Decimal(r[2]) for r in rows],
                         dtype=pd.ArrowDtype(__import__("pyarrow").decimal128(18, 6))),
    })
    df.attrs.update(by=("operator",), currency="EUR")
    return df


def test_an_operator_is_named_with_its_country_and_orange_is_not_grey():
    df = costs_frame([("FR", "Orange", "5"), ("ES", "Orange", "4"), ("SN", "Orange", "3"),
                      ("FR", "SFR", "2"), (None, None, "1")])
    ax = plots.plot_costs(df, n=None)
    colors = bar_colors(ax, "y")
    assert list(colors) == ["Orange (FR)", "Orange (ES)", "Orange (SN)", "SFR (FR)", "unknown"]
    assert category_colors_problems(colors, plots.OTHER_COLOR) == []
    assert to_hex(colors["unknown"]) == plots.UNKNOWN_COLOR.lower()


def test_an_operator_without_a_country_column_is_named_alone():
    df = costs_frame([("FR", "Orange", "5"), ("FR", "SFR", "2")]).drop(columns="from_country")
    ax = plots.plot_costs(df)
    assert list(bar_colors(ax, "y")) == ["Orange", "SFR"]


def test_orange_is_never_the_colour_of_other(sample_con):
    ax = draw("costs_operator", sample_con)
    colors = bar_colors(ax, "y")
    # An operator is (network country, name): Orange in France is "Orange (FR)".
    assert "other" in colors and any(k.startswith("Orange") for k in colors)
    assert category_colors_problems(colors, plots.OTHER_COLOR) == []


@pytest.mark.parametrize("name", ["costs_month_country", "costs_country_status",
                                  "encodings_country", "statuses", "traffic",
                                  "sender_activity", "keywords"])
def test_legend_categories_have_distinct_colours(sample_con, name):
    ax = draw(name, sample_con)
    colors = legend_colors(ax)
    assert len(colors) >= 2
    assert category_colors_problems(colors, plots.OTHER_COLOR) == []


def test_many_categories_still_distinct():
    names = [f"op{i}" for i in range(80)]
    colors = plots._distinct_colors("operator", [*names, "other", None])
    assert len(set(colors)) == len(colors)
    assert colors[-2] == plots.OTHER_COLOR.lower()
    assert colors[-1] == plots.UNKNOWN_COLOR.lower()
    assert plots.OTHER_COLOR.lower() not in colors[:-2]


@given(values=st.lists(st.one_of(st.none(), st.text(max_size=20), st.sampled_from(
    ["other", "unknown", "gsm", "delivered", "FR", "Orange", "CI", "TN"])), unique=True,
    max_size=60), dimension=st.sampled_from(["country", "operator", "status", "encoding"]))
def test_one_plot_never_gives_two_categories_one_colour(values, dimension):
    colors = plots._distinct_colors(dimension, values)
    assert len(set(colors)) == len(colors)
    reserved = {plots.OTHER_COLOR.lower(), plots.UNKNOWN_COLOR.lower()}
    for value, color in zip(values, colors, strict=True):
        if value not in (None, "other", "unknown"):
            assert color not in reserved, value


def test_no_category_colour_is_grey():
    # Countries with fixed colours included: none may be mistaken for "other".
    from matplotlib.colors import to_rgb

    for code in [*plots._COUNTRY_ORDER, "ZZ", "Orange", "QQ"]:
        r, g, b = to_rgb(plots.country_color(code))
        assert max(r, g, b) - min(r, g, b) > 0.1, code


# ---------------------------------------------------------------- untrusted names


def messages(names: list[str]) -> pd.DataFrame:
    """A small messages frame whose country, number and traffic type are `names`."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = []
    for i, name in enumerate(names):
        for j in range(i + 1):
            rows.append({
                "sid": f"s{i}-{j}", "from_number": name, "from_country": name,
                "from_location": name, "traffic_type": name, "status": name,
                "network_operator": name, "encoding": "gsm", "parts": 1,
                "created_at": start + timedelta(days=7 * j + i),
                "cost_cents": Decimal(i + 1),
            })
    return pd.DataFrame(rows)


NAMES = st.lists(
    st.one_of(
        st.text(min_size=1, max_size=120),
        st.text(alphabet="\x00\x1b\u202e\u2066\u200f\u2028\n\t$\\ab", min_size=1,
                max_size=40),
        st.sampled_from(["other", "unknown", "Orange", "$x$", "\\$", "A" * 300]),
    ),
    min_size=1, max_size=12, unique=True,
)


@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(names=NAMES)
def test_random_category_names_stay_readable(names):
    con = queries.connect(messages(names), currency="EUR")
    try:
        draws = [
            lambda ax: plots.plot_locations(queries.locations(con), ax=ax),
            lambda ax: plots.plot_top_senders(queries.top_senders(con), ax=ax),
            lambda ax: plots.plot_costs(queries.costs(con, by=["month", "traffic_type"]),
                                        ax=ax),
            lambda ax: plots.plot_statuses(queries.statuses(con, freq=None), ax=ax),
        ]
        for plot in draws:
            fig, ax = plt.subplots(figsize=(8, 5))
            plot(ax)
            problems = readability_problems(fig)
            assert problems == [], problems
            texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
            assert not any(ch in t for t in texts for ch in "\x00\x1b\u202e\u2066\u2028")
            plt.close(fig)
    finally:
        con.close()


# ---------------------------------------------------------------- 200,000 messages


@pytest.fixture(scope="module")
def big_con(tmp_path_factory):
    from smsanalytics.sample import write_sample

    root = tmp_path_factory.mktemp("plots-200k")
    write_sample(root / "archive", n=200_000, seed=5)
    sa.convert([str(root / "archive")], str(root / "ds"))
    con = sa.connect(str(root / "ds"), currency="EUR")
    yield con
    con.close()


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_every_plot_reads_on_200k_messages(big_con, name):
    ax = draw(name, big_con, SIZES["half"])
    assert readability_problems(ax.figure) == []
    for rect in (p for p in ax.patches if isinstance(p, Rectangle)):
        if rect.get_height() > 0 and not np.isclose(rect.get_width(), 0):
            ax.figure.canvas.draw()
            assert rect.get_window_extent().width >= 1.0
            break
