"""Order-select / order-sign rules on drugs that dialysis changes (clinical policy v2, section 5).

quinine-for-cramps, baclofen-dialysis, gabapentin-dialysis-dose, hypertonic-saline. One finding per
order, at the highest indicator that matches; critical ones carry a recommended suggestion to delete
the draft order.
"""
from __future__ import annotations

from . import ORDER_HOOKS, Finding, RuleContext, Threshold, rule
from .order_support import checked, modality, order_values, remove_order


# ---------------------------------------------------------------- quinine / quinidine

@rule("quinine-for-cramps", hooks=ORDER_HOOKS, label="quinine")
def quinine_for_cramps(ctx: RuleContext) -> list[Finding]:
    out = []
    for order in checked(ctx):
        kind = order.quinine_kind
        if kind is None:
            continue
        quinine = kind == "quinine"
        out.append(Finding(values=order_values(order), indicator="critical" if quinine else "warning",
                           variant=None if quinine else "quinidine",
                           suggestions=[s for s in (remove_order(order, recommended=quinine),) if s],
                           order_ref=order.reference))
    return out


# ---------------------------------------------------------------- baclofen

@rule("baclofen-dialysis", hooks=ORDER_HOOKS, label="baclofen",
      thresholds={"max_daily": Threshold("mg/d", low=2.5, high=30), "max_single": Threshold("mg", low=2.5, high=30)})
def baclofen_dialysis(ctx: RuleContext) -> list[Finding]:
    max_daily, max_single = ctx.params["max_daily"], ctx.params["max_single"]
    out = []
    for order in checked(ctx):
        if not order.oral_baclofen:
            continue
        dose = order.dose
        mg = dose.unit == "mg"
        daily = dose.daily if mg else None
        single = dose.single if mg else None
        critical = (daily is not None and daily > max_daily) or (single is not None and single > max_single)
        values = {**order_values(order), "max_daily": f"{max_daily:g} mg/day", "max_single": f"{max_single:g} mg"}
        out.append(Finding(values=values, indicator="critical" if critical else "warning",
                           variant="critical" if critical else None,
                           suggestions=[s for s in (remove_order(order, recommended=critical),) if s],
                           order_ref=order.reference))
    return out


# ---------------------------------------------------------------- gabapentin

@rule("gabapentin-dialysis-dose", hooks=ORDER_HOOKS, label="gabapentin dose",
      thresholds={"max_daily": Threshold("mg/d", low=100, high=900),        # label, CrCl <= 15: 100-300 mg/day
                  "critical_daily": Threshold("mg/d", low=300, high=1800)})
def gabapentin_dialysis_dose(ctx: RuleContext) -> list[Finding]:
    max_daily, critical_daily = ctx.params["max_daily"], ctx.params["critical_daily"]
    out = []
    for order in checked(ctx):
        if not order.gabapentin:
            continue
        dose = order.maintenance
        daily = dose.daily if dose.unit == "mg" else None
        if daily is None:
            indicator, variant = "info", "unreadable"
        elif daily > critical_daily:
            indicator, variant = "critical", "critical"
        elif daily > max_daily:
            indicator, variant = "warning", None
        else:
            continue
        supplement = order.after_dialysis
        values = {**order_values(order),
                  "daily": f"{daily:g} mg/day" if daily is not None else "not readable from the order",
                  "supplement": (f"; plus {supplement.single:g} mg after each session" if supplement.single else ""),
                  "max_daily": f"{max_daily:g} mg/day", "critical_daily": f"{critical_daily:g} mg/day",
                  **_GABAPENTIN_MODALITY[modality(ctx.snapshot)]}
        out.append(Finding(values=values, indicator=indicator, variant=variant,
                           suggestions=[s for s in (remove_order(order, recommended=True),) if s]
                           if indicator == "critical" else [], order_ref=order.reference))
    return out


# policy section 1.5 / 5: the label's post-session supplement is for hemodialysis only, none for PD
_HD_SUPPLEMENT = {"after_hd": ", with a supplemental dose after each hemodialysis session",
                  "after_hd_short": " plus a dose after each HD session"}
_GABAPENTIN_MODALITY = {
    "HD": _HD_SUPPLEMENT, "unknown": _HD_SUPPLEMENT,
    "PD": {"after_hd": "; on peritoneal dialysis the label gives no supplemental dose",
           "after_hd_short": "; no extra dose on PD"},
    "CRRT": {"after_hd": "; the label gives no CRRT dosing: dose it with the renal pharmacist",
             "after_hd_short": "; no label dose for CRRT"},
}


# ---------------------------------------------------------------- 23.4 % sodium chloride

@rule("hypertonic-saline", hooks=ORDER_HOOKS, label="23.4% sodium chloride",
      thresholds={"max_volume": Threshold("mL", low=5, high=30)})  # design; the verified dose is 16 mL
def hypertonic_saline(ctx: RuleContext) -> list[Finding]:
    snap, max_volume = ctx.snapshot, ctx.params["max_volume"]
    in_session = bool(getattr(snap, "session_in_progress", False))
    out = []
    for order in checked(ctx):
        if not order.hypertonic_saline:
            continue
        volume = order.volume_ml
        problems: list[tuple[str, str]] = []  # (detail wording, summary wording)
        if not in_session:
            problems.append(("no hemodialysis session is in progress", "no HD session running"))
        if order.peripheral:
            problems.append(("a peripheral vein is stated", "peripheral vein"))
        elif order.route not in ("intravenous", "dialysis-circuit"):
            problems.append(("the route is not the dialysis circuit's venous line", "route not the circuit"))
        if volume is None:
            problems.append(("the volume per dose cannot be read", "volume unreadable"))
        elif volume > max_volume:
            problems.append((f"{volume:g} mL per dose is more than {max_volume:g} mL",
                             f"{volume:g} mL, over {max_volume:g} mL"))
        values = {**order_values(order), "max_volume": f"{max_volume:g} mL",
                  "volume": f"{volume:g} mL" if volume is not None else "not readable",
                  "problems": "; ".join(long for long, _short in problems) if problems else "none",
                  "problems_short": "; ".join(short for _long, short in problems) if problems else "none"}
        critical = bool(problems)
        out.append(Finding(values=values, indicator="critical" if critical else "info",
                           variant="critical" if critical else None,
                           suggestions=[s for s in (remove_order(order, recommended=True),) if s] if critical else [],
                           order_ref=order.reference))
    return out
