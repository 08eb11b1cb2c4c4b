"""Order-select / order-sign medication safety rules for patients on dialysis.

Each rule looks at the draft orders the hook checks (``orders.orders_to_check``: the
selected ones on order-select, all of them on order-sign) and returns one finding per
order it is about, so every card names exactly one order. Drug identity, route and dose
come from ``clinical.orders`` / ``clinical.drugs``; lab values from the Snapshot (the
same prefetch/fetch path as patient-view). Thresholds come from the card files.
"""
from __future__ import annotations

from datetime import timedelta

from .. import codes
from ..drugs import CALCIUM_REPLACEMENT, MAGNESIUM_SALTS, POTASSIUM_REPLACEMENT, QUININE_LIKE
from ..orders import DraftOrder, orders_to_check
from . import ORDER_HOOKS, Finding, RuleContext, SuggestionSpec, Threshold, order_lab, rule
from .magnesium import MG_LOW


def order_values(order: DraftOrder) -> dict[str, str]:
    """Placeholders every order card fills: which order it is about, its route and dose."""
    route = order.route_text or order.route or ""
    if not route:
        route = "not stated (IV-only premix)" if order.product is not None and order.product.iv_only else "not stated"
    return {
        "medication": order.label(80),
        "med_short": order.label(40),
        "order": order.reference if order.has_id else "draft order without an id",
        "route": route,
        "dose": order.dose.describe(),
    }


def _lab_line(result, now, missing: str) -> tuple[str, str]:
    if result is None:
        return missing, "—"
    return result.display(), result.when(now)


def _lookback_days(ctx: RuleContext) -> str:
    days = ctx.snapshot.lookback.total_seconds() / 86400
    return f"{days:.0f} days"


def _checked(ctx: RuleContext) -> list[DraftOrder]:
    return orders_to_check(ctx.snapshot)


# ---------------------------------------------------------------- IV magnesium

@rule("iv-magnesium-dialysis", hooks=ORDER_HOOKS)
def iv_magnesium(ctx: RuleContext) -> list[Finding]:
    snap = ctx.snapshot
    out = []
    for order in _checked(ctx):
        if order.ingredient() not in MAGNESIUM_SALTS or not order.intravenous:
            continue
        mg, mg_time = _lab_line(snap.latest("mg"), snap.now, f"no serum Mg result in the last {_lookback_days(ctx)}")
        values = {**order_values(order), "mg": mg, "mg_time": mg_time}
        suggestions = []
        if order.has_id:
            suggestions.append(SuggestionSpec("remove-draft", {"resource_id": order.reference,
                                                               "medication": values["medication"]},
                                              recommended=True))
        out.append(Finding(values=values, suggestions=suggestions,
                           order_ref=order.reference))
    return out


# ---------------------------------------------------------------- K or Ca replacement while Mg is low or unknown

def _replacement_kind(order: DraftOrder) -> str | None:
    ingredient = order.ingredient()
    if ingredient in POTASSIUM_REPLACEMENT:
        return "potassium"
    if ingredient in CALCIUM_REPLACEMENT:
        return "calcium"
    return None


@rule("replacement-before-magnesium", hooks=ORDER_HOOKS, needs={"labs"}, thresholds={"mg_low": MG_LOW})
def replacement_before_magnesium(ctx: RuleContext) -> list[Finding]:
    snap = ctx.snapshot
    threshold = ctx.params["mg_low"]
    mg = snap.latest("mg")
    if mg is None:
        variant = "missing"
    elif mg.below(threshold) is True:
        variant = None
    else:
        return []  # Mg at or above target, or a comparator that cannot be placed against it
    out = []
    for order in _checked(ctx):
        kind = _replacement_kind(order)
        if kind is None:
            continue
        mg_text, mg_time = _lab_line(mg, snap.now, "none")
        values = {**order_values(order), "replacement": kind, "mg": mg_text, "mg_time": mg_time,
                  "threshold": f"{threshold:.2f} mmol/L", "lookback": _lookback_days(ctx)}
        suggestions = [order_lab("mg")] if variant == "missing" else []
        out.append(Finding(values=values, suggestions=suggestions,
                           order_ref=order.reference, variant=variant))
    return out


# ---------------------------------------------------------------- potassium replacement in dialysis

@rule("potassium-in-dialysis", hooks=ORDER_HOOKS, needs={"labs"},
      thresholds={"k_replace_below": Threshold("mmol/L", low=2.5, high=4.5),
                  "k_recent": Threshold("h", low=6, high=168)})
def potassium_in_dialysis(ctx: RuleContext) -> list[Finding]:
    snap = ctx.snapshot
    threshold = ctx.params["k_replace_below"]
    hours = ctx.params["k_recent"]
    k = snap.labs.latest("k", snap.now, timedelta(hours=hours))
    if k is None:
        variant = "missing"
    elif k.at_or_above(threshold) is True:
        variant = None
    else:
        return []
    older = snap.labs.latest("k")
    out = []
    for order in _checked(ctx):
        if order.ingredient() not in POTASSIUM_REPLACEMENT:
            continue
        if k is not None:
            k_text, k_time = k.display(), k.when(snap.now)
        elif older is not None:
            k_text, k_time = f"none in the last {hours:.0f} h (older: {older.display()})", older.when(snap.now)
        else:
            k_text, k_time = f"none in the last {hours:.0f} h", "—"
        shown = k or older
        kind = ""
        if shown is not None and shown.loinc == codes.K_POST_DIALYSIS:
            kind = "a post-dialysis draw: it rebounds over the following hours"
        elif shown is not None and shown.loinc == codes.K_PRE_DIALYSIS:
            kind = "a pre-dialysis draw"
        values = {**order_values(order), "k": k_text, "k_time": k_time,
                  "k_kind": f" ({kind})" if kind else "", "threshold": f"{threshold:.1f} mmol/L",
                  "recent_hours": f"{hours:.0f} h"}
        suggestions = [order_lab("k")] if variant == "missing" else []
        out.append(Finding(values=values, suggestions=suggestions,
                           order_ref=order.reference, variant=variant))
    return out


# ---------------------------------------------------------------- quinine / quinidine

@rule("quinine-for-cramps", hooks=ORDER_HOOKS)
def quinine_for_cramps(ctx: RuleContext) -> list[Finding]:
    out = []
    for order in _checked(ctx):
        product = order.product
        if product is None or not (product.ingredients & QUININE_LIKE):
            continue
        if "dextromethorphan" in product.ingredients:
            continue  # Nuedexta (dextromethorphan/quinidine) is for pseudobulbar affect, not a cramp drug
        if product.multi:
            continue  # no other quinine combination is known to the table; never guess
        drug = "quinine" if "quinine" in product.ingredients else "quinidine"
        out.append(Finding(values={**order_values(order), "drug": drug},
                           order_ref=order.reference))
    return out


# ---------------------------------------------------------------- baclofen

def _systemic_baclofen(order: DraftOrder) -> bool:
    if order.ingredient() != "baclofen":
        return False
    if order.route == "intrathecal":
        return False
    if order.route is None and order.product is not None and order.product.intrathecal:
        return False
    return True


@rule("baclofen-dialysis", hooks=ORDER_HOOKS, thresholds={"critical_daily": Threshold("mg/d", low=5, high=80)})
def baclofen_dialysis(ctx: RuleContext) -> list[Finding]:
    limit = ctx.params["critical_daily"]
    out = []
    for order in _checked(ctx):
        if not _systemic_baclofen(order):
            continue
        dose = order.dose
        daily_mg = dose.daily if dose.unit == "mg" else None
        high = daily_mg is not None and daily_mg > limit
        values = {**order_values(order),
                  "daily": f"{daily_mg:.0f} mg/day" if daily_mg is not None else "not stated",
                  "threshold": f"{limit:.0f} mg/day"}
        out.append(Finding(values=values, order_ref=order.reference,
                           indicator="critical" if high else None, variant="high-dose" if high else None))
    return out


# ---------------------------------------------------------------- gabapentin

@rule("gabapentin-dialysis-dose", hooks=ORDER_HOOKS,
      thresholds={"max_single": Threshold("mg", low=100, high=900), "max_daily": Threshold("mg/d", low=100, high=1800)})
def gabapentin_dose(ctx: RuleContext) -> list[Finding]:
    max_single = ctx.params["max_single"]
    max_daily = ctx.params["max_daily"]
    out = []
    for order in _checked(ctx):
        if order.ingredient() != "gabapentin":
            continue
        dose = order.dose
        if dose.unit != "mg":
            continue  # dose not readable: the rule does not guess
        too_much_once = dose.single is not None and dose.single > max_single
        too_much_daily = dose.daily is not None and dose.daily > max_daily
        if not (too_much_once or too_much_daily):
            continue
        values = {**order_values(order),
                  "single": f"{dose.single:.0f} mg" if dose.single is not None else "not stated",
                  "daily": f"{dose.daily:.0f} mg/day" if dose.daily is not None else "frequency not stated",
                  "max_single": f"{max_single:.0f} mg", "max_daily": f"{max_daily:.0f} mg"}
        out.append(Finding(values=values, order_ref=order.reference))
    return out


# ---------------------------------------------------------------- hypertonic saline

@rule("hypertonic-saline", hooks=ORDER_HOOKS, thresholds={"concentration": Threshold("mg/mL", low=30, high=300)})
def hypertonic_saline(ctx: RuleContext) -> list[Finding]:
    wanted = ctx.params["concentration"]
    out = []
    for order in _checked(ctx):
        if order.ingredient() != "sodium chloride":
            continue
        conc = order.product.concentration_mg_ml
        if conc is None or abs(conc - wanted) > 0.5:
            continue
        values = {**order_values(order), "concentration": f"{conc / 10:.1f}% ({conc:.0f} mg/mL)"}
        out.append(Finding(values=values, order_ref=order.reference))
    return out
