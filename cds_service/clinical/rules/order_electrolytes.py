"""Order-select / order-sign rules on electrolyte orders (clinical policy v2, section 5).

potassium-supplement, magnesium-co-management, parenteral-magnesium, oral-magnesium,
aluminum-containing-drug. Each looks at the draft orders the hook checks (the selected ones on
order-select, all of them on order-sign) and gives at most one finding per order, at the highest
indicator that matches. What an order is (a K salt, parenteral or oral Mg, ...) is decided by
``clinical.orders.DraftOrder``; lab values and their class against the dialysis sessions come from
the snapshot.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Mapping

from . import ORDER_HOOKS, Finding, RuleContext, SuggestionSpec, Threshold, order_lab, rule
from .order_support import (ACUTE_THRESHOLDS, INDICATOR_RANK, LabView, checked, lab_view, modality,
                            order_values, remove_order)

K_LEVELS = {
    "k_critical": Threshold("mmol/L", low=5.5, high=7.5),  # latest K at or above: critical
    "k_high": Threshold("mmol/L", low=4.5, high=6.5),      # latest K at or above: warning
    "k_low": Threshold("mmol/L", low=3.0, high=4.0),       # below: low (rebound warning when early post-dialysis)
    "k_early_post_low": Threshold("mmol/L", low=2.5, high=3.5),  # early post-dialysis K below this is a true deficit
    "k_recent": Threshold("d", low=1, high=30),            # no K result this recent: warning + K order
    **ACUTE_THRESHOLDS,
}


@rule("potassium-supplement", hooks=ORDER_HOOKS, needs={"labs"}, tags={"order-electrolyte"},
      label="potassium supplement", thresholds=K_LEVELS)
def potassium_supplement(ctx: RuleContext) -> list[Finding]:
    snap, p = ctx.snapshot, ctx.params
    kind = modality(snap)
    k = lab_view(ctx, "k", within=timedelta(days=p["k_recent"]))
    out = []
    for order in checked(ctx):
        salt = order.potassium_salt
        if salt is None:
            continue
        variant, indicator, suggestions = _potassium_tier(k, kind, p)
        if variant is None:
            continue
        if variant in ("critical", "high", "high-superseded"):
            suggestions = [s for s in (remove_order(order, recommended=True),) if s] + suggestions
        values = {**order_values(order), **k.values(ctx.snapshot, "k", f"no serum potassium in the last {p['k_recent']:.0f} days"),
                  "salt": salt, "k_high": f"{p['k_high']:.1f} mmol/L", "k_critical": f"{p['k_critical']:.1f} mmol/L",
                  **_K_MODALITY[kind],
                  "k_stale": "dialyzed since" if not k.current else f"older than {_acute_hours(kind, p):g} h",
                  "k_why": ("Dialysis since then has removed potassium" if not k.current else
                            f"It is older than {_acute_hours(kind, p):g} h")}
        out.append(Finding(values=values, indicator=indicator, variant=variant, suggestions=suggestions,
                           order_ref=order.reference))
    return out


# policy section 1.5: session wording only for hemodialysis; PD and CRRT name their own levers
_K_MODALITY = {
    "HD": {"k_stays": "it stays until the next dialysis",
           "k_review": "Review diet, potassium binders, dialysate potassium and the timing of the next session."},
    "PD": {"k_stays": "PD removes it only slowly",
           "k_review": "Review diet, potassium binders and the PD prescription (exchange number and volume)."},
    "CRRT": {"k_stays": "review the CRRT fluids",
             "k_review": "Review the potassium in the CRRT dialysate and replacement fluids, and the CRRT dose."},
    "unknown": {"k_stays": "it accumulates on dialysis",
                "k_review": "Review diet, potassium binders and the dialysis prescription."},
}


def _acute_hours(kind: str, p: Mapping[str, float]) -> float:
    return p["acute_hours_crrt"] if kind == "CRRT" else p["acute_hours"]


def _potassium_tier(k: LabView, kind: str, p: Mapping[str, float]
                    ) -> tuple[str | None, str | None, list[SuggestionSpec]]:
    """(variant, indicator, suggestions) for a K-salt order, or (None, ...) for no card."""
    if k.result is None:
        return "missing", "warning", [order_lab("k")]
    if k.at_or_above(p["k_critical"]) or k.at_or_above(p["k_high"]):
        critical = k.at_or_above(p["k_critical"])
        if critical and k.acute_ok:
            return "critical", "critical", []
        if not k.current or critical:
            # superseded (dialyzed since), or would be critical but older than the acute look-back
            # (policy section 2): a warning that asks for a recheck, never a critical card
            return "high-superseded", "warning", [order_lab("k")]
        return "high", "warning", []
    if kind == "PD":
        return None, None, []  # PD with K below the warning level: oral KCl is often right (Pichitporn 2022)
    if k.below(p["k_low"]):
        # policy section 2: only an early-post K at or above k_early_post_low is transient; below it the
        # deficit is real and the replacement must not be discouraged (section 1.6): no rebound card
        if k.early_post and not k.below(p["k_early_post_low"]):
            return "rebound", "warning", [order_lab("k")]
        return None, None, []  # a current low K: replacement is appropriate (co-management may apply)
    if kind in ("HD", "unknown"):
        return "review", "info", []
    return None, None, []


# ---------------------------------------------------------------- magnesium co-management

CO_MANAGEMENT = {
    "mg_low": Threshold("mmol/L", low=0.5, high=0.9),
    "k_low": Threshold("mmol/L", low=3.0, high=4.0),
    "k_early_post_low": Threshold("mmol/L", low=2.5, high=3.5),
    "ica_low": Threshold("mmol/L", low=0.9, high=1.3),
    "k_hyperkalemia": Threshold("mmol/L", low=5.5, high=7.0),  # calcium given at this K is for the heart, not a deficit
    "mg_lookback": Threshold("d", low=7, high=90),
}


@rule("magnesium-co-management", hooks=ORDER_HOOKS, needs={"labs"}, tags={"order-electrolyte"},
      label="magnesium co-management", thresholds=CO_MANAGEMENT)
def magnesium_co_management(ctx: RuleContext) -> list[Finding]:
    p = ctx.params
    mg = lab_view(ctx, "mg", within=timedelta(days=p["mg_lookback"]))
    if mg.result is not None and not mg.below(p["mg_low"]):
        return []  # Mg at or above target (or a comparator that cannot be placed below it)
    k = lab_view(ctx, "k", within=timedelta(days=7))
    ica = lab_view(ctx, "ica", within=timedelta(days=7))
    out = []
    for order in checked(ctx):
        if order.potassium_salt:
            deficit, value, name = "potassium", k, "Potassium"
            # just after a session K rebounds: only a K below k_early_post_low counts as low there
            low = k.below(p["k_low"]) and ((k.current and not k.early_post)
                                           or (k.early_post and k.below(p["k_early_post_low"])))
        elif order.calcium_replacement:
            if k.result is not None and k.at_or_above(p["k_hyperkalemia"]):
                continue  # IV calcium for hyperkalemia protects the heart; not a calcium deficit
            deficit, value, name = "calcium", ica, "Ionized calcium"
            low = ica.result is not None and ica.below(p["ica_low"]) and ica.current
        else:
            continue
        if not low:
            continue
        # the rationale differs by deficit: refractory hypokalemia (Huang & Kuo) for K; impaired PTH for Ca
        variant = ("unknown" if mg.result is None else None) if deficit == "potassium" else (
            "calcium-unknown" if mg.result is None else "calcium")
        values = {**order_values(order), **value.values(ctx.snapshot, "low_value", "—"), **mg.values(
            ctx.snapshot, "mg", f"no serum magnesium in the last {p['mg_lookback']:.0f} days"),
            "deficit": deficit, "deficit_short": name, "mg_low": f"{p['mg_low']:.2f} mmol/L"}
        unknown = mg.result is None
        out.append(Finding(values=values, indicator="info" if unknown else "warning", variant=variant,
                           suggestions=[order_lab("mg")] if unknown else [], order_ref=order.reference))
    return out


# ---------------------------------------------------------------- parenteral magnesium

PARENTERAL_MG = {
    "mg_high": Threshold("mmol/L", low=1.2, high=2.5),      # latest Mg at or above: critical (no IV/IM Mg)
    "mg_low": Threshold("mmol/L", low=0.5, high=0.9),       # below: deficiency (info); between: warning
    "max_48h": Threshold("g", low=10, high=40),             # label: 20 g per 48 h in severe renal insufficiency
    "max_24h": Threshold("g", low=4, high=20),              # design: check a level before repeating above this
    "mg_recent": Threshold("d", low=1, high=30),            # no Mg result this recent: warning + Mg order
    **ACUTE_THRESHOLDS,
}


@rule("parenteral-magnesium", hooks=ORDER_HOOKS, needs={"labs"}, tags={"order-electrolyte"},
      label="parenteral magnesium", thresholds=PARENTERAL_MG)
def parenteral_magnesium(ctx: RuleContext) -> list[Finding]:
    snap, p = ctx.snapshot, ctx.params
    kind = modality(snap)
    mg = lab_view(ctx, "mg", within=timedelta(days=p["mg_recent"]))
    out = []
    for order in checked(ctx):
        if order.parenteral_magnesium is None:
            continue
        totals = order.magnesium_totals()
        over_48 = totals.h48 is not None and totals.h48 > p["max_48h"] * 1000
        over_24 = totals.h24 is not None and totals.h24 > p["max_24h"] * 1000
        high = mg.result is not None and mg.at_or_above(p["mg_high"])
        candidates: list[tuple[str, str]] = []  # (indicator, variant)
        if high and mg.acute_ok:
            candidates.append(("critical", "high"))
        if over_48:
            candidates.append(("critical", "over-48h"))
        if kind != "CRRT":  # CRRT (often citrate: Mg losses, routine replacement): only the two above
            if high:
                if not mg.acute_ok:  # high but superseded or too old: recheck (the critical tier is above)
                    candidates.append(("warning", "high-superseded"))
            elif mg.result is None:
                candidates.append(("warning", "missing"))
            elif mg.below(p["mg_low"]):
                candidates.append(("info", "deficiency"))
            else:
                candidates.append(("warning", "no-deficiency"))
            if over_24:
                candidates.append(("warning", "over-24h"))
        if not candidates:
            continue
        indicator, variant = max(candidates, key=lambda c: INDICATOR_RANK[c[0]])
        suggestions = []
        if indicator == "critical":
            suggestions.append(remove_order(order, recommended=True))
        if any(v in ("missing", "high-superseded", "over-24h") for _i, v in candidates):
            suggestions.append(order_lab("mg"))
        values = {**order_values(order), **mg.values(ctx.snapshot, "mg", f"no serum magnesium in the last {p['mg_recent']:.0f} days"),
                  "total_24h": _grams(totals.h24, totals.upper_bound), "total_48h": _grams(totals.h48, totals.upper_bound),
                  "reading": "; ".join(totals.readings) or "as ordered",
                  "salt": order.parenteral_magnesium,
                  "max_24h": f"{p['max_24h']:g} g", "max_48h": f"{p['max_48h']:g} g"}
        values["also"] = _also(candidates, variant, values)
        out.append(Finding(values=values, indicator=indicator, variant=variant,
                           suggestions=[s for s in suggestions if s], order_ref=order.reference))
    return out


_ALSO = {"over-24h": "{total_24h} in 24 h is more than {max_24h}: check a level before repeating",
         "over-48h": "{total_48h} in 48 h is more than the {max_48h} limit",
         "high": "serum Mg is high", "high-superseded": "serum Mg was high before the last session (recheck it)",
         "no-deficiency": "there is no Mg deficiency",
         "missing": "there is no recent Mg result"}


def _also(candidates: list[tuple[str, str]], chosen: str, values: Mapping[str, str]) -> str:
    others = [_ALSO[v].format(**values) for _i, v in candidates if v != chosen and v in _ALSO]
    return (" Also: " + "; ".join(dict.fromkeys(others)) + ".") if others else ""


def _grams(mg: float | None, upper: bool) -> str:
    if mg is None:
        return "not readable from the order"
    return f"{'up to ' if upper else ''}{mg / 1000:.1f} g"


# ---------------------------------------------------------------- oral magnesium

ORAL_MG = {"mg_high": Threshold("mmol/L", low=1.2, high=2.5), "mg_recent": Threshold("d", low=1, high=30),
           **ACUTE_THRESHOLDS}


@rule("oral-magnesium", hooks=ORDER_HOOKS, tags={"order-electrolyte"}, label="oral magnesium", thresholds=ORAL_MG)
def oral_magnesium(ctx: RuleContext) -> list[Finding]:
    p = ctx.params
    mg = lab_view(ctx, "mg", within=timedelta(days=p["mg_recent"]))
    out = []
    for order in checked(ctx):
        salt = order.oral_magnesium
        if salt is None:
            continue
        high = mg.result is not None and mg.at_or_above(p["mg_high"])
        critical = high and mg.acute_ok
        suggestions = [remove_order(order, recommended=critical)]
        if mg.result is None or (high and not critical):
            suggestions.append(order_lab("mg"))
        variant = "critical" if critical else ("high-superseded" if high else None)
        values = {**order_values(order), **mg.values(ctx.snapshot, "mg", f"no serum magnesium in the last {p['mg_recent']:.0f} days"),
                  "salt": salt}
        out.append(Finding(values=values, indicator="critical" if critical else "warning", variant=variant,
                           suggestions=[s for s in suggestions if s], order_ref=order.reference))
    return out


# ---------------------------------------------------------------- aluminum-containing drugs

@rule("aluminum-containing-drug", hooks=ORDER_HOOKS, label="aluminum-containing drug",
      thresholds={"al_lookback": Threshold("d", low=90, high=730)})
def aluminum_containing_drug(ctx: RuleContext) -> list[Finding]:
    p = ctx.params
    al = lab_view(ctx, "aluminum", within=timedelta(days=p["al_lookback"]))
    orders = checked(ctx)
    # citrate salts among the draft orders and the active medications (KDOQI 2003: never together)
    citrates = [o for o in [*(ctx.snapshot.draft_orders or []), *(ctx.snapshot.medications or [])]
                if o.citrate]
    out = []
    for order in orders:
        drug = order.aluminum
        if drug is None:
            continue
        others = list(dict.fromkeys(o.label(40) for o in citrates if o is not order))
        values = {**order_values(order), **al.values(ctx.snapshot, "al", f"no serum aluminum in the last {p['al_lookback']:.0f} days"),
                  "drug": "sucralfate" if drug == "sucralfate" else "aluminum hydroxide",
                  "citrate": (f" This patient's orders include a citrate salt ({'; '.join(others)}): do not give "
                              f"them together." if others else "")}
        # the phosphate-binder advice fits aluminum hydroxide only: sucralfate has its own wording
        out.append(Finding(values=values, suggestions=[order_lab("aluminum")] if al.result is None else [],
                           variant="sucralfate" if drug == "sucralfate" else None, order_ref=order.reference))
    return out


