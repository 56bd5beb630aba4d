"""A check is a row ``(area, check, status, detail)``; a check table is a DataFrame of them."""
from __future__ import annotations


def _row(area, check, status, detail=""):
    return {"area": area, "check": check, "status": status, "detail": str(detail)}


def _table(rows):
    import pandas as pd
    return pd.DataFrame(rows, columns=["area", "check", "status", "detail"])


def problems(table) -> list[str]:
    """The rows of a check table that need fixing, as lines."""
    bad = table[table.status == "missing"]
    return [f"{r.area}/{r.check}: {r.detail}" for r in bad.itertuples()]
