"""From sessions to numbers and verdicts: the gate's vocabulary (``gate``, light enough for the
options), per-arm metrics, the statistics, fingerprints, the comparison of two arms, and the
analysis every run file carries. Imports no output module."""
