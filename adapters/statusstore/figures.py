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
    """Count, median and 80th percentile per group, period and step (see the module docstring)."""
    codes, code_params = _values([(code, name) for name, group in MILESTONES.items() for code in group])
    steps, step_params = _values(
        [(step.name, step.start, step.end) for step in STEPS if query.step in (None, step.name)]
    )
    reopen = ", ".join("?" for _ in REOPENED)
    params: list[object] = [*code_params, *step_params, *REOPENED]
    only = ""
    if query.fachverfahren is not None:
        only += " AND s.fachverfahren = ?"
        params.append(query.fachverfahren)
    if query.leistung is not None:
        only += " AND s.leistung = ?"
        params.append(query.leistung)
    params += [query.from_s, query.to_s]
    group = "fachverfahren, leistung" if query.by == "leistung" else "fachverfahren"
    period = dialect.month.format(t="t") if query.monthly else f"'{TOTAL_PERIOD}'"
    leistung_out = "leistung" if query.by == "leistung" else "NULL"
    c = dialect.collate
    order = f"fachverfahren{c}, leistung{c}" if query.by == "leistung" else f"fachverfahren{c}"
    # Only identifiers and expressions of this module are formatted in; every value is a bound parameter.
    sql = f"""
WITH codes(code, milestone) AS (VALUES {codes}),
steps(step, a, b) AS (VALUES {steps}),
reopen AS (SELECT vorgang_key, MIN(sequence) AS seq FROM status WHERE status IN ({reopen}) GROUP BY vorgang_key),
ranked AS (
    SELECT s.vorgang_key, s.fachverfahren, s.leistung, c.milestone, s.zeitpunkt_s,
        ROW_NUMBER() OVER (PARTITION BY s.vorgang_key, c.milestone
                           ORDER BY s.sequence DESC, s.nachrichten_uuid{c} DESC) AS rn
    FROM status s JOIN codes c ON c.code = s.status
    LEFT JOIN reopen r ON r.vorgang_key = s.vorgang_key
    WHERE (r.seq IS NULL OR s.sequence < r.seq){only}
),
m AS (SELECT vorgang_key, fachverfahren, leistung, milestone, zeitpunkt_s FROM ranked WHERE rn = 1),
d AS (
    SELECT st.step, e.fachverfahren, e.leistung, e.zeitpunkt_s AS t, e.zeitpunkt_s - b.zeitpunkt_s AS dur
    FROM steps st
    JOIN m b ON b.milestone = st.a
    JOIN m e ON e.vorgang_key = b.vorgang_key AND e.milestone = st.b
    WHERE e.zeitpunkt_s >= b.zeitpunkt_s AND e.zeitpunkt_s >= ? AND e.zeitpunkt_s < ?
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
