"""Analysis of run outputs: summaries now; survival statistics and figures later."""
