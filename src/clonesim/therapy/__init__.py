"""Therapy: dosing patterns, exposure over a step, schedule phases and their triggers.

The semantics every engine follows (the clone engine in :mod:`clonesim.engine.kernel`
and the exact reference engine in :mod:`clonesim.engine.reference`):

Time grid
    Steps end at the grid points k * dt_days and also at *step points*: a fixed
    ``day`` or ``after_days`` trigger of the current phase, an on/off boundary of a
    dosing pattern with holidays, a ctDNA sampling day, and the horizon. Rates are constant within a step.

Exposure (DESIGN §1.5), in units of the standard regimen
    Drug d of the current phase is dosed ``dose`` standard doses at times 0,
    every_days, 2 every_days, ... counted from the start of its pattern, that fall
    in the first ``on_days`` of each cycle of on_days + off_days. A pattern starts
    with the phase, except that a drug given the same way (dose, every_days,
    on_days, off_days) in the previous phase keeps its dosing times. With a half-life, concentration follows
    one-compartment elimination (a dose D adds k D, k = ln 2 / half-life) and a
    step uses the exact mean concentration over the step
    (:func:`clonesim.therapy.dosing.drug_exposure_over_step`). Without a half-life
    the exposure is dose / every_days while the pattern is on, 0 otherwise.
    Concentration carries over between phases (a stopped drug washes out).
    Drug-days count standard doses given (1.0 = one standard daily dose).

Rates under drug (DESIGN §1.2-1.3): signal s_g from Hill inhibition, Bliss
    independence and the bypass rule; b = b_p (1 - phi_p (1 - s_g)) (times the
    logistic factor), d = d_p + k_p (1 - s_g) + sum_d extra_{d,p} H_d(c_d) / H_d(1),
    H(c) = c^n / (IC50^n + c^n); switching p->q at sigma0 (s_g if scaled) +
    sigma_drug (1 - s_g).

Events, evaluated at every step end t with burden N (day 0 has N0)
    * nadir: the least N seen so far. The progression reference is that nadir
      (``progression_reference: nadir``, RECIST) or N0 (``baseline``); a phase
      change made by a ``progression`` trigger starts a new line of therapy, and
      the nadir reference restarts from the current burden.
    * progression: N >= (1 + progression_diameter_increase)^3 x reference and
      N >= detection_cells. A progression that ends a phase through a
      ``progression`` trigger is a change of line; any other is the schedule's
      progression (``progressed``, ``ttp_days``), recorded once.
    * extinction (N = 0) and death (N >= lethal_cells) stop the replicate.
    * per mechanism (each alteration, and each non-founder phenotype): arising
      (first cell, with its birth time inside the step), established (cells >=
      established_cells), dominant (cells > N / 2), ctDNA detection (alterations
      only: at sampling days 0, k, 2k, ... with k = events.ctdna.every_days, when
      VAF = carriers / (2 N) >= detection_limit_vaf).
    * best response from the nadir before the schedule's progression: CR when it is
      below detection_cells, PR when N_nadir <= (1 - partial_response_diameter_decrease)^3
      N0, otherwise SD, or PD when the schedule progressed before
      stable_disease_min_days.
    * mechanism at progression: the mechanism whose cells grew most from the
      current line's nadir to the schedule's progression ("none" when no
      mechanism grew), and its share of the burden at progression: what a
      re-biopsy of the growing tumour would find, rather than the residual cells
      that were there all along.

Triggers of the current phase (checked in this order after the events of a step end)
    * ``day: D``: fires at the step end t >= D (D is a step point, so t = D).
    * ``after_days: X``: fires at t >= phase start + X (a step point).
    * ``progression``: fires when a progression happens at t.
    * ``ctdna_detects: A``: fires when a ctDNA sample at t detects A (a sample on
      the day the phase started counts, so day-0 detection switches at once).
    * ``burden_below: X`` / ``burden_above: X``: fires at the first step end after
      the phase started with N < X N0 / N > X N0.
    When a phase ends its schedule moves to the next phase (or back to the first
    when ``repeat``), and the new phase's trigger is checked at once for the same
    t (at most one pass through the schedule per step end); burden, progression,
    day and after_days triggers cannot fire at the instant their phase starts.
"""
