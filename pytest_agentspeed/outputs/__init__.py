"""What a run is written as: terminal and markdown tables, the HTML report and its charts,
and the exporters that write them at the end of a run."""
