"""Analysis of run outputs: the per-schedule summary, and the report (survival statistics,
paired comparisons, mechanisms, clone composition, figures)."""
