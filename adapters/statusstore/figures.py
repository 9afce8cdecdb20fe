"""The SQL of the transparency figures, one text for SQLite and PostgreSQL (rules in :mod:`rueckkanal.transparency`).

SQLite has no percentile function, so the nearest rank is written with window functions: per group, ``ROW_NUMBER``
over the durations in ascending order and ``COUNT`` over the group; the median is the duration whose row number is
``(n + 1) / 2`` and the 80th percentile the one at ``(4n + 4) / 5`` (integer division: ``ceil(n/2)`` and
``ceil(4n/5)``). The codes of the milestones and the steps come from the core's table as ``VALUES`` rows, bound as
parameters: the SQL names no status code. Only the month expression, the parameter marker and a collation differ
between the two databases (:class:`Dialect`).
"""

from __future__ import annotations

from dataclasses import dataclass

from rueckkanal.transparency import (
    DELIVERY_LIMITS,
    MILESTONES,
    REOPENED,
    STATUS_WEB_TARGET,
    STEPS,
    TOTAL_PERIOD,
    StepQuery,
)


@dataclass(frozen=True)
class Dialect:
    name: str
    month: str  # an expression of the epoch seconds column ``{t}`` as YYYY-MM (UTC)
    collate: str  # byte order for text, so ties break as in Python

    def numbered(self, sql: str) -> str:
        """``?`` markers as the database wants them (asyncpg: ``$1``, ``$2``, …; the SQL has no other ``?``)."""
        if self.name == "sqlite":
            return sql
        parts = sql.split("?")
        return "".join(part + (f"${i}" if i < len(parts) else "") for i, part in enumerate(parts, start=1))


SQLITE = Dialect("sqlite", "strftime('%Y-%m', {t}, 'unixepoch')", "")
POSTGRES = Dialect("postgres", "to_char(to_timestamp({t}) AT TIME ZONE 'UTC', 'YYYY-MM')", ' COLLATE "C"')


def _values(rows: list[tuple[object, ...]]) -> tuple[str, list[object]]:
    marks = ", ".join("(" + ", ".join("?" for _ in row) + ")" for row in rows)
    return marks, [value for row in rows for value in row]


def step_figures_sql(dialect: Dialect, query: StepQuery) -> tuple[str, list[object]]:
    """Count, median and 80th percentile per group, period and step (see the module docstring).

    Linear in the statuses: one pass with window functions finds each Vorgang's first reopening and the newest
    status of each milestone, one ``GROUP BY`` turns the milestones into columns ``m0``, ``m1``, … per Vorgang,
    and each step is a ``UNION ALL`` branch over those columns (no self-join)."""
    names = list(MILESTONES)
    codes, code_params = _values([(code, name) for name, group in MILESTONES.items() for code in group])
    reopen = ", ".join("?" for _ in REOPENED)
    params: list[object] = [*code_params, *REOPENED]
    only = ""
    if query.fachverfahren is not None:
        only += " AND fachverfahren = ?"
        params.append(query.fachverfahren)
    if query.leistung is not None:
        only += " AND leistung = ?"
        params.append(query.leistung)
    pivot = ",\n        ".join(f"MAX(CASE WHEN milestone = ? THEN zeitpunkt_s END) AS m{i}" for i in range(len(names)))
    params += names
    branches = []
    for step in STEPS:
        if query.step not in (None, step.name):
            continue
        a, b = f"m{names.index(step.start)}", f"m{names.index(step.end)}"
        columns = f"? AS step, fachverfahren, leistung, {b} AS t, {b} - {a} AS dur"
        where = f"{a} IS NOT NULL AND {b} IS NOT NULL AND {b} >= {a} AND {b} >= ? AND {b} < ?"
        branches.append("SELECT " + columns + " FROM v WHERE " + where)  # noqa: S608  # column names of this module only
        params += [step.name, query.from_s, query.to_s]
    steps = "\n    UNION ALL\n    ".join(branches)
    group = "fachverfahren, leistung" if query.by == "leistung" else "fachverfahren"
    period = dialect.month.format(t="t") if query.monthly else f"'{TOTAL_PERIOD}'"
    leistung_out = "leistung" if query.by == "leistung" else "NULL"
    c = dialect.collate
    order = f"fachverfahren{c}, leistung{c}" if query.by == "leistung" else f"fachverfahren{c}"
    sql = f"""
WITH codes(code, milestone) AS (VALUES {codes}),
s AS (
    SELECT vorgang_key, fachverfahren, leistung, status, sequence, nachrichten_uuid, zeitpunkt_s,
        MIN(CASE WHEN status IN ({reopen}) THEN sequence END) OVER (PARTITION BY vorgang_key) AS reopened
    FROM status WHERE status IS NOT NULL{only}
),
ranked AS (
    SELECT s.vorgang_key, s.fachverfahren, s.leistung, c.milestone, s.zeitpunkt_s,
        ROW_NUMBER() OVER (PARTITION BY s.vorgang_key, c.milestone
                           ORDER BY s.sequence DESC, s.nachrichten_uuid{c} DESC) AS rn
    FROM s JOIN codes c ON c.code = s.status
    WHERE s.reopened IS NULL OR s.sequence < s.reopened
),
v AS (
    SELECT vorgang_key, MAX(fachverfahren) AS fachverfahren, MAX(leistung) AS leistung,
        {pivot}
    FROM ranked WHERE rn = 1 GROUP BY vorgang_key
),
d AS (
    {steps}
),
g AS (SELECT {group}, {period} AS period, step, dur FROM d),
r AS (
    SELECT g.*, ROW_NUMBER() OVER (PARTITION BY {group}, period, step ORDER BY dur) AS rn,
        COUNT(*) OVER (PARTITION BY {group}, period, step) AS n
    FROM g
)
SELECT fachverfahren, {leistung_out} AS leistung, period, step, MAX(n) AS n,
    MIN(CASE WHEN rn = (n + 1) / 2 THEN dur END) AS median,
    MIN(CASE WHEN rn = (4 * n + 4) / 5 THEN dur END) AS p80
FROM r GROUP BY {group}, period, step
ORDER BY {order}, period, step{c}
"""  # noqa: S608
    return dialect.numbered(sql), params


def delivery_figures_sql(dialect: Dialect, from_s: int, to_s: int) -> tuple[str, list[object]]:
    """Per target: statuses of the window, how many reached it, and how many within each limit."""
    within = ", ".join(
        f"SUM(CASE WHEN x.delay <= {int(limit)} THEN 1 ELSE 0 END) AS within_{i}"
        for i, limit in enumerate(DELIVERY_LIMITS)
    )
    sql = f"""
WITH w AS (SELECT nachrichten_uuid, zeitpunkt_s, received_s FROM status WHERE zeitpunkt_s >= ? AND zeitpunkt_s < ?),
x AS (
    SELECT ? AS target, w.received_s - w.zeitpunkt_s AS delay FROM w
    UNION ALL
    SELECT d.target, d.delivered_s - w.zeitpunkt_s AS delay
    FROM delivery d JOIN w ON w.nachrichten_uuid = d.nachrichten_uuid
)
SELECT x.target, (SELECT COUNT(*) FROM w) AS statuses, COUNT(*) AS reached, {within}
FROM x GROUP BY x.target ORDER BY x.target{dialect.collate}
"""  # noqa: S608
    return dialect.numbered(sql), [from_s, to_s, STATUS_WEB_TARGET]


def dead_letter_figures_sql(dialect: Dialect, from_s: int, to_s: int) -> tuple[str, list[object]]:
    c = dialect.collate
    order = f"ORDER BY target{c}, stage{c}, reason{c}"
    sql = "SELECT target, stage, reason, COUNT(*) FROM dead_letter WHERE failed_s >= ? AND failed_s < ? "
    sql += "GROUP BY target, stage, reason " + order
    return dialect.numbered(sql), [from_s, to_s]
