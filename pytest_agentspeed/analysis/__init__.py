"""From sessions to numbers and verdicts: per-arm metrics, the statistics, the comparison of
two arms, and the analysis every run file carries. Imports no output module."""
