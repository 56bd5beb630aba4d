"""Small HTML pieces shared by the report's parts: escaped text, table cells, inline figures."""
from __future__ import annotations

import base64
import html as _html
import io
import math

import numpy as np

PNG_DPI = 72           # small inline figures: eight targets stay well under 5 MB


def esc(value) -> str:
    return _html.escape(str(value))


def fmt(value, digits: int = 2) -> str:
    """A table cell: numbers rounded, missing values as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return str(value)


def png(fig) -> str:
    """``<img>`` of a matplotlib Figure, inline (base64 PNG), its titles as the alt text."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode()
    titles = [fig._suptitle.get_text()] if fig._suptitle is not None else []
    titles += [ax.get_title() for ax in fig.axes if ax.get_title()]
    return (f'<img class="eks-fig" alt="{esc(" / ".join(titles))}" '
            f'src="data:image/png;base64,{data}">')
