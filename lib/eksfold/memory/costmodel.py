"""Per-setting cost models time(L) and memory(L) fitted to a settings-sweep table.

Each (setting, metric) gets ``y = sum_i c_i L^p_i`` with non-negative ``c_i`` (so predictions
grow with L and the constant is the weights and runtime), fitted by non-negative least squares
on relative residuals. Candidate forms: ``a + bL + cL^2``, ``a + bL^2``, ``a + bL + cL^2 + dL^3``
(when there are enough lengths) and ``a + bL^k`` (k searched on 1..3.5). The form with the
lowest leave-one-length-out error is kept; that error is reported with the fit. A single power
law through the origin (the report's old fit) cannot bend upward, which is why it sat ~2x
below the longest targets.

Beyond the longest measured length the forms that fit the sweep about equally well part ways:
an unchunked setting's attention logits grow as L^3, which points up to 384 residues cannot
tell from L^2 (tiny preset: a + bL^2 predicted 12.1 GB at 883 residues, the cubic 21.3 GB,
and the fold was killed at 23.2 GB). There a prediction is the highest of the plausible forms
(mean leave-one-out error within ``PLAUSIBLE`` of the best), so the chooser's distance margin
is applied to the envelope, not to the lowest guess.

>>> model = CostModel.from_profile("cpu-2core")                      # doctest: +SKIP
>>> model.predict(400, "lma")                                        # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..models import get_backend

PROFILES = Path(__file__).resolve().parent.parent / "profiles"
TIME = "inference_s"
FORMS = {"quadratic": (0, 1, 2), "a+bL^2": (0, 2), "cubic": (0, 1, 2, 3), "power": None}
POWER_GRID = np.round(np.arange(1.0, 3.51, 0.05), 2)
# a form is plausible beyond the sweep when its mean LOO error <= max(2 x best, best + 5 points)
PLAUSIBLE = (2.0, 0.05)


def _design(lengths, powers) -> np.ndarray:
    L = np.asarray(lengths, float) / 100.0  # scaled so the columns are of similar size
    return np.stack([L ** p for p in powers], axis=1)


def _nnls(lengths, y, powers):
    from scipy.optimize import nnls

    y = np.asarray(y, float)
    coef, _ = nnls(_design(lengths, powers) / y[:, None], np.ones_like(y))
    return coef


def _fit_form(form, lengths, y):
    """(powers, coef) for ``form`` on these points."""
    if FORMS[form] is not None:
        return FORMS[form], _nnls(lengths, y, FORMS[form])
    best = None
    for k in POWER_GRID:
        coef = _nnls(lengths, y, (0, k))
        err = np.sum((_design(lengths, (0, k)) @ coef / y - 1) ** 2)
        if best is None or err < best[0]:
            best = (err, (0, float(k)), coef)
    return best[1], best[2]


def _loo(form, lengths, y):
    """Relative errors (pred/meas - 1) at each length, fitted without that length's rows."""
    out = []
    for held in np.unique(lengths):
        train = lengths != held
        powers, coef = _fit_form(form, lengths[train], y[train])
        pred = _design([held], powers) @ coef
        out.extend((float(held), float(m), float(pred[0]), float(pred[0] / m - 1))
                   for m in y[~train])
    return out


@dataclass
class Fit:
    """One fitted curve: ``predict(L) = sum coef_i (L/100)^powers_i``."""

    setting: str
    metric: str
    form: str
    powers: tuple
    coef: np.ndarray
    loo: list = field(default_factory=list)   # (length, measured, predicted, rel_error)
    lengths: tuple = ()                        # the measured lengths it was fitted to
    # other plausible forms (form, powers, coef): beyond ``lengths`` the highest one counts
    plausible: list = field(default_factory=list)

    def predict(self, length) -> float:
        best = float(_design([length], self.powers) @ self.coef)
        if not self.lengths or length <= max(self.lengths):
            return best
        return max([best] + [float(_design([length], p) @ c) for _, p, c in self.plausible])

    def envelope_form(self, length) -> str:
        """Which form gives :meth:`predict` at ``length`` (the fitted one inside the sweep)."""
        if not self.lengths or length <= max(self.lengths) or not self.plausible:
            return self.form
        values = [(float(_design([length], self.powers) @ self.coef), self.form)]
        values += [(float(_design([length], p) @ c), f) for f, p, c in self.plausible]
        return max(values)[1]

    @property
    def loo_max_error(self) -> float:
        return max((abs(e[3]) for e in self.loo), default=float("nan"))

    def formula(self) -> str:
        terms = [f"{c:.4g}" + (f"*(L/100)^{p:g}" if p else "") for c, p in zip(self.coef, self.powers) if c]
        return " + ".join(terms) or "0"


def fit_curve(setting, metric, lengths, y) -> Fit:
    """The candidate form with the lowest mean leave-one-length-out error (see module doc)."""
    lengths, y = np.asarray(lengths, float), np.asarray(y, float)
    ok = np.isfinite(lengths) & np.isfinite(y) & (y > 0)
    lengths, y = lengths[ok], y[ok]
    n = len(np.unique(lengths))
    if n < 2:
        raise ConfigError(f"setting {setting!r}: {metric} needs at least two lengths to fit")
    scored = []
    for form, powers in FORMS.items():
        nparams = 2 if powers is None else len(powers)
        if n - 1 < nparams and not (n == 2 and form == "a+bL^2"):
            continue
        loo = _loo(form, lengths, y) if n > 2 else []
        scored.append((np.mean([abs(e[3]) for e in loo]) if loo else 0.0, form, loo))
    best = None
    for entry in scored:
        if best is None or entry[0] < best[0] - 1e-9:
            best = entry
    score, form, loo = best
    powers, coef = _fit_form(form, lengths, y)
    limit = max(PLAUSIBLE[0] * score, score + PLAUSIBLE[1])
    plausible = [(f, *_fit_form(f, lengths, y)) for s, f, _ in scored
                 if f != form and loo and s <= limit]
    return Fit(setting, metric, form, tuple(powers), coef, loo,
               tuple(int(v) for v in np.unique(lengths)),
               [(f, tuple(p), c) for f, p, c in plausible])


@dataclass
class TemplateTerm:
    """What one template structure adds to a fold, measured: per length, (metric at ``n``
    templates - metric at 0 templates) / ``n`` for the same setting and length in one sweep
    (``eksfold bench settings --templates 0,4``). Between measured lengths it is interpolated
    linearly, outside them held at the nearest one; a negative difference (noise: a template
    never removes work) counts as 0."""

    setting: str
    metric: str
    lengths: tuple
    per_template: tuple
    templates: int                    # the template count the difference was measured with

    def predict(self, length) -> float:
        return max(0.0, float(np.interp(length, self.lengths, self.per_template)))


def template_terms(df, device: str, metrics) -> dict:
    """(setting, metric) -> :class:`TemplateTerm` from the sweep rows with templates (rows with
    the template stack off describe another network and are not used)."""
    if "templates" not in df:
        return {}
    on = df[df["template_stack"].fillna(True).astype(bool)] if "template_stack" in df else df
    base, hits = on[on["templates"].fillna(0) == 0], on[on["templates"].fillna(0) > 0]
    terms = {}
    for (setting, n), rows in hits.groupby(["setting", "templates"]):
        ref = base[base["setting"] == setting].groupby("length").mean(numeric_only=True)
        with_t = rows.groupby("length").mean(numeric_only=True)
        common = sorted(set(ref.index) & set(with_t.index))
        for metric in metrics:
            if not common or metric not in rows or rows[metric].isna().all():
                continue
            diff = [(with_t.at[L, metric] - ref.at[L, metric]) / n for L in common]
            prev = terms.get((setting, metric))
            if prev is None or n > prev.templates:   # the largest count measured speaks
                terms[(setting, metric)] = TemplateTerm(setting, metric, tuple(map(int, common)),
                                                        tuple(float(d) for d in diff), int(n))
    return terms


class CostModel:
    """Fitted time and memory per setting, for one device kind and preset; with a templates
    sweep, the measured term per template structure (:class:`TemplateTerm`)."""

    def __init__(self, fits: dict, device: str, preset: str | None = None,
                 templates: dict | None = None):
        self.fits, self.device, self.preset = fits, device, preset
        self.templates = templates or {}
        self.memory_metric = "peak_cuda_reserved_mb" if device == "cuda" else "peak_rss_mb"
        # the back end's ladder order (every rung, whatever this machine has installed)
        order = [s.name for s in get_backend(preset if isinstance(preset, str) else None).ladder("cuda")]
        names = {s for s, m in fits if m == self.memory_metric}
        self.settings = sorted(names, key=lambda n: order.index(n) if n in order else len(order))

    @classmethod
    def fit(cls, df, device: str | None = None) -> "CostModel":
        """Fit every setting of a sweep table (rows with an error are left out)."""
        df = df[df["error"].isna()] if "error" in df else df
        if df.empty:
            raise ConfigError("the settings table has no successful measurement to fit")
        device = device or ("cuda" if (df.get("device") == "cuda").any() else "cpu")
        df = df[df["device"] == device] if "device" in df else df
        metrics = [TIME, "peak_rss_mb"] + (["peak_cuda_reserved_mb", "peak_cuda_alloc_mb"]
                                           if device == "cuda" else [])
        terms = template_terms(df, device, metrics)
        if "templates" in df:   # the curves: folds as the preset runs them without hits
            stack = (df["template_stack"].fillna(True).astype(bool) if "template_stack" in df
                     else True)
            df = df[(df["templates"].fillna(0) == 0) & stack]
        fits = {}
        for setting, rows in df.groupby("setting"):
            for metric in metrics:
                if metric in rows and rows[metric].notna().sum() and rows["length"].nunique() >= 2:
                    fits[(setting, metric)] = fit_curve(setting, metric, rows["length"], rows[metric])
        preset = df["preset"].iloc[0] if "preset" in df else None
        return cls(fits, device, preset, terms)

    @classmethod
    def from_csv(cls, path, device: str | None = None) -> "CostModel":
        import pandas as pd

        if not path or not Path(path).is_file():
            raise ConfigError(f"settings table {path} not found (run `eksfold bench settings`)")
        return cls.fit(pd.read_csv(path), device)

    @classmethod
    def from_profile(cls, profile: str = "cpu-2core", preset: str = "demo") -> "CostModel":
        """The profile's sweep for ``preset``, with its templates sweep
        (``settings[-PRESET]-templates.csv``) when one was measured."""
        suffix = "" if preset == "demo" else f"-{preset}"
        model = cls.from_csv(PROFILES / profile / f"settings{suffix}.csv")
        extra = PROFILES / profile / f"settings{suffix}-templates.csv"
        if extra.is_file():
            import pandas as pd

            table = pd.read_csv(extra)
            table = table[table["error"].isna()] if "error" in table else table
            model.templates = template_terms(table[table["device"] == model.device],
                                             model.device, [TIME, model.memory_metric])
        return model

    def _fit(self, setting, metric) -> Fit:
        try:
            return self.fits[(setting, metric)]
        except KeyError:
            raise ConfigError(f"no {metric} model for setting {setting!r} on {self.device} "
                              f"(fitted: {', '.join(self.settings)})") from None

    def template_term(self, length: int, setting: str, templates: int,
                    metric: str | None = None) -> float:
        """What ``templates`` template structures add to ``metric`` (0 when not measured)."""
        term = self.templates.get((setting, metric or self.memory_metric))
        return templates * term.predict(length) if term is not None and templates else 0.0

    def predict(self, length: int, setting: str, metric: str | None = None,
                templates: int = 0) -> float:
        """Predicted peak memory in MB (or ``metric``) at ``length`` with ``setting``, plus
        the measured term of ``templates`` template structures."""
        metric = metric or self.memory_metric
        return (self._fit(setting, metric).predict(length)
                + self.template_term(length, setting, templates, metric))

    def measured_lengths(self, setting: str) -> tuple:
        """The lengths the memory model of ``setting`` was fitted to (empty if none)."""
        fit = self.fits.get((setting, self.memory_metric))
        return fit.lengths if fit is not None else ()

    def predict_time(self, length: int, setting: str, templates: int = 0) -> float:
        return (self._fit(setting, TIME).predict(length)
                + self.template_term(length, setting, templates, TIME))

    def loo_table(self):
        """Leave-one-length-out errors of every fit as a DataFrame."""
        import pandas as pd

        rows = [{"setting": f.setting, "metric": f.metric, "form": f.form, "length": e[0],
                 "measured": e[1], "predicted": round(e[2], 2), "rel_error": round(e[3], 4)}
                for f in self.fits.values() for e in f.loo]
        return pd.DataFrame(rows)

    def describe(self) -> str:
        try:   # what L counts: residues, or tokens (OpenFold3)
            unit = get_backend(self.preset if isinstance(self.preset, str) else None
                               ).memory_grows_with
        except ConfigError:
            unit = "residues"
        lines = [f"cost model ({self.device}, preset {self.preset}); L in {unit}, "
                 "leave-one-length-out max |error|:"]
        for (setting, metric), f in sorted(self.fits.items()):
            lines.append(f"  {setting:8s} {metric:22s} {f.form:9s} {f.formula():55s} "
                         f"LOO max {100 * f.loo_max_error:5.1f}%")
            if f.plausible:
                lines.append(f"  {'':8s} {'':22s} beyond {max(f.lengths)}: highest of "
                             f"{', '.join([f.form] + [p[0] for p in f.plausible])}")
        for (setting, metric), t in sorted(self.templates.items()):
            lines.append(f"  {setting:8s} {metric:22s} per template (measured with "
                         f"{t.templates}): " + ", ".join(
                             f"L={L} {d:+.2f}" for L, d in zip(t.lengths, t.per_template)))
        return "\n".join(lines)
